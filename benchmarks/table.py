"""The performance table of issue 17, measured side by side in one run: for each piece of
work, kvmigrate's figure, the native figure (the target loading the same RDB at start-up;
REPLICAOF), RedisShake's when a binary is given, the ratios, and the peak RSS of the
kvmigrate process next to its figure.

One Redis 7.0 source is seeded with ``keys`` mixed keys (migrate.lab.seed, several
databases) and saved; every row works on that data, into fresh Valkey 8.0 targets."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.bigkey import BigKey
from benchmarks.rdbfile import copy_rdb_argv, hwm_mib, sync_argv
from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.lab.server import ServerProcess
from migrate.sync.scan import BATCH as SCAN_BATCH

SOURCE, TARGET = "redis-7.0", "valkey-8.0"
CLI_ROUNDS = 5
KVMIGRATE = [sys.executable, "-m", "migrate"]
STOP_GRACE = 30.0


@dataclass
class Figure:
    seconds: float
    note: str = ""
    rss_mib: float | None = None


@dataclass
class Row:
    work: str
    goal: str
    kvmigrate: Figure
    native: Figure | None = None
    redisshake: Figure | None = None


# --- measuring child processes ---------------------------------------------------------------

def run_timed(argv: list[str], *, done: Callable[[], bool] | None = None,
              timeout: float = 7200) -> tuple[float, float, str, float]:
    """(wall seconds, peak RSS MiB, stdout, CPU seconds) of one child process. The peak is
    its VmHWM polled from /proc every few ms (rusage would count the parent's pages after a
    vfork); the CPU time (user + system, from wait4) is the child's own, so it depends less
    on what else runs than the wall time does. With ``done``, the time is taken once
    ``done()`` holds and the child is stopped then (a process that never exits on its own,
    such as RedisShake's sync reader) by SIGINT, the signal RedisShake v4 stops on (it only
    logs a SIGTERM), and SIGKILL if it is still there STOP_GRACE seconds later."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err)
        peak = 0.0
        elapsed = None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, hwm_mib(proc.pid) or 0.0)
            if done is not None and elapsed is None and done():
                elapsed = time.perf_counter() - started
                proc.send_signal(signal.SIGINT)
            if elapsed is not None and time.perf_counter() - started > elapsed + STOP_GRACE:
                proc.kill()
            if time.perf_counter() - started > timeout:
                proc.kill()
                raise RuntimeError(f"{' '.join(argv[:4])} took longer than {timeout} s")
            time.sleep(0.003 if done is None else 0.05)
        elapsed = elapsed if elapsed is not None else time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if done is None and proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(argv[:5])} exited {proc.returncode}: "
                               f"{err.read().decode(errors='replace')[-1500:]}")
        out.seek(0)
        return elapsed, peak, out.read().decode(errors="replace"), \
            usage.ru_utime + usage.ru_stime


def total_keys(server: ServerProcess) -> int:
    info = server.client().info("keyspace")
    return sum(int(v["keys"]) for k, v in info.items() if str(k).startswith("db"))


def _wait(predicate: Callable[[], bool], timeout: float = 7200) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.02)


# --- the rows --------------------------------------------------------------------------------

class Bench:
    def __init__(self, fleet: Fleet, tmp: Path, keys: int, redisshake: str | None,
                 say: Callable[[str], None]):
        self.fleet, self.tmp, self.keys, self.shake, self.say = fleet, tmp, keys, \
            redisshake, say
        self.source = fleet.start(SOURCE, extra_args=["--repl-diskless-sync-delay", "0"])
        seed(self.source.endpoint, keys=keys)
        self.source.client().save()
        self.rdb = tmp / "source.rdb"
        shutil.copy(Path(self.source.directory) / "dump.rdb", self.rdb)
        self.expected = total_keys(self.source)
        self.replica: ServerProcess | None = None  # a target in sync, for the verify rows
        say(f"dataset: {self.expected:,} keys in {SOURCE} (seeded {keys:,} mixed keys), "
            f"RDB {self.rdb.stat().st_size / 2**20:.1f} MiB; targets {TARGET}")

    def _target(self) -> ServerProcess:
        return self.fleet.start(TARGET)

    def _check(self, target: ServerProcess, what: str) -> None:
        got = total_keys(target)
        # keys with a TTL may expire between the source's count and the target's
        if abs(got - self.expected) > max(10, self.expected // 1000):
            raise RuntimeError(f"{what}: {got:,} keys on the target, {self.expected:,} "
                               "expected")

    def _shake(self, reader: str, options: dict[str, str | int], target: ServerProcess,
               follows: bool) -> Figure:
        """One RedisShake v4 run (its shake.toml: a ``[reader]`` section, ``[redis_writer]``,
        ``[advanced]``). The rdb and scan readers exit once copied; the sync reader keeps
        following the source (``follows``): it is timed until the target has every key."""
        assert self.shake is not None
        work = self.tmp / f"shake-{reader}-{target.port}"
        work.mkdir()
        lines = [f"[{reader}]", *(f"{k} = {json.dumps(v)}" for k, v in options.items()),
                 "[redis_writer]", f'address = "127.0.0.1:{target.port}"',
                 "[advanced]", f"dir = {json.dumps(str(work / 'data'))}", 'log_level = "warn"']
        config = work / "shake.toml"
        config.write_text("\n".join(lines) + "\n")
        done = (lambda: total_keys(target) >= self.expected) if follows else None
        seconds, rss, _, cpu = run_timed([self.shake, str(config)], done=done)
        self._check(target, f"RedisShake {reader}")
        return Figure(seconds, f"{reader.replace('_', ' ')}; {cpu:.1f} s CPU", rss)

    def _replicaof(self, target: ServerProcess) -> float:
        started = time.perf_counter()
        target.client().execute_command("REPLICAOF", "127.0.0.1", self.source.port)

        def caught_up() -> bool:
            t = target.client().info("replication")
            s = self.source.client().info("replication")
            return t.get("master_link_status") == "up" and \
                t.get("slave_repl_offset") == s.get("master_repl_offset")
        _wait(caught_up)
        seconds = time.perf_counter() - started
        target.client().execute_command("REPLICAOF", "NO", "ONE")
        return seconds

    def copy_from_rdb(self) -> Row:
        native_dir = self.tmp / "native-load"
        native_dir.mkdir()
        shutil.copy(self.rdb, native_dir / "dump.rdb")
        started = time.perf_counter()
        native = self.fleet.start(TARGET, extra_args=["--dir", str(native_dir)])
        wall = time.perf_counter() - started
        found = re.search(r"DB loaded from disk: ([\d.]+) seconds",
                          Path(native.log_path).read_text())
        load = float(found.group(1)) if found else wall
        native.stop()
        target = self._target()
        seconds, rss, out, cpu = run_timed(copy_rdb_argv(KVMIGRATE, self.rdb, target.url))
        path = json.loads(out).get("path", "record by record")
        self._check(target, "copy --from-rdb")
        target.stop()
        shake = None
        if self.shake:
            target = self._target()
            shake = self._shake("rdb_reader", {"filepath": str(self.rdb)}, target, False)
            target.stop()
        return Row("RDB file -> target (`copy --from-rdb`)", "<= 1.3x native",
                   Figure(seconds, f"{path}; {cpu:.1f} s CPU", rss),
                   Figure(load, f"loading it at start (start to ready {wall:.2f} s)"),
                   shake)

    def _sync(self, mode: str, *extra: str) -> Figure:
        target = self._target()
        state = self.tmp / f"state-{mode}"
        seconds, rss, _, cpu = run_timed(sync_argv(KVMIGRATE, self.source.url, target.url, mode,
                                                   state, *extra))
        self._check(target, f"sync --mode {mode}")
        target.stop()
        return Figure(seconds, f"process start to caught up; {cpu:.1f} s CPU", rss)

    def _native_sync(self) -> Figure:
        target = self._target()
        seconds = self._replicaof(target)
        self._check(target, "REPLICAOF")
        if self.replica is None:
            self.replica = target
        else:
            target.stop()
        return Figure(seconds, "REPLICAOF")

    def replica_mode(self) -> Row:
        native = self._native_sync()
        ours = self._sync("replica")
        shake = None
        if self.shake:
            target = self._target()
            shake = self._shake("sync_reader", {"address": f"127.0.0.1:{self.source.port}"},
                                target, True)
            target.stop()
        return Row("live initial sync (`sync --mode replica`)",
                   ">= 1.5x RedisShake's throughput", ours, native, shake)

    def proxy_mode(self) -> Row:
        native = self._native_sync()
        return Row("live initial sync (`sync --mode proxy`)", "<= 1.3x native",
                   self._sync("proxy"), native)

    def scan_mode(self) -> Row:
        ours = self._sync("scan", "--set-notify-keyspace-events")
        shake = None
        if self.shake:
            target = self._target()
            # SCAN's COUNT as kvmigrate's scan mode asks it (RedisShake's default is 1)
            shake = self._shake("scan_reader", {"address": f"127.0.0.1:{self.source.port}",
                                                "count": SCAN_BATCH}, target, False)
            target.stop()
        return Row("scan copy (`sync --mode scan`)", ">= 1.5x RedisShake's throughput",
                   ours, None, shake)

    def _verify(self, *args: str) -> tuple[float, float, dict, float]:
        if self.replica is None:
            self._native_sync()
        assert self.replica is not None
        seconds, rss, out, cpu = run_timed([*KVMIGRATE, "verify", "--source", self.source.url,
                                       "--target", self.replica.url, "--format", "json",
                                       *args])
        return seconds, rss, json.loads(out), cpu

    def verify_full(self) -> Row:
        seconds, rss, report, cpu = self._verify("--full")
        inside = float(report.get("elapsed_s") or seconds)
        checked = int(report.get("keys_checked") or self.expected)
        return Row("`verify --full`", ">= 150k keys/s",
                   Figure(seconds, f"{checked / inside / 1000:,.1f}k keys/s ({inside:.2f} s "
                                   f"comparing; ok={report.get('ok')}); {cpu:.1f} s CPU", rss))

    def verify_sample(self) -> Row:
        seconds, rss, report, cpu = self._verify("--sample", "1000")
        inside = float(report.get("elapsed_s") or seconds)
        return Row("verification sample, 1,000 keys", "well under 0.2 s",
                   Figure(inside, f"comparing; process {seconds:.2f} s, {cpu:.2f} s CPU", rss))


def _median_run(argv: list[str]) -> tuple[float, float, float]:
    """Median wall and CPU seconds of CLI_ROUNDS runs, and the highest peak RSS."""
    runs = [run_timed(argv) for _ in range(CLI_ROUNDS)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs), \
        statistics.median(r[3] for r in runs)


def cli_rows() -> list[Row]:
    floor, _, floor_cpu = _median_run([sys.executable, "-c", "pass"])
    rows = []
    for flag in ("--help", "--version"):
        seconds, rss, cpu = _median_run([*KVMIGRATE, flag])
        rows.append(Row(f"CLI start, `kvmigrate {flag}`", "< 0.3 s",
                        Figure(seconds, f"median of {CLI_ROUNDS}; {cpu:.2f} s CPU", rss),
                        Figure(floor, f"`python -c pass`; {floor_cpu:.2f} s CPU")))
    return rows


# --- output ----------------------------------------------------------------------------------

HEAD = ("work", "native", "RedisShake", "kvmigrate", "kvmigrate peak RSS",
        "kvmigrate / native", "kvmigrate / RedisShake", "goal")


def _fig(f: Figure | None, absent: str) -> str:
    if f is None:
        return absent
    return f"{f.seconds:.2f} s" + (f" ({f.note})" if f.note else "")


def cells(row: Row, shake_given: bool) -> tuple[str, ...]:
    ours = row.kvmigrate
    ratio = f"{ours.seconds / row.native.seconds:.2f}x" if row.native else "-"
    vs_shake = f"{ours.seconds / row.redisshake.seconds:.2f}x" if row.redisshake else "-"
    return (row.work, _fig(row.native, "-"),
            _fig(row.redisshake, "-" if shake_given else "not given"),
            _fig(ours, ""), f"{ours.rss_mib:.0f} MiB" if ours.rss_mib else "-",
            ratio, vs_shake, row.goal)


def markdown(rows: list[Row], shake_given: bool) -> str:
    out = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    out += ["| " + " | ".join(cells(r, shake_given)) + " |" for r in rows]
    return "\n".join(out)


def plain(rows: list[Row], shake_given: bool) -> str:
    out = []
    for r in rows:
        c = cells(r, shake_given)
        out.append(c[0])
        out += [f"    {name:<23} {value}" for name, value in zip(HEAD[1:], c[1:], strict=True)]
    return "\n".join(out)


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, load average {load}"


ROWS = ("rdb", "replica", "proxy", "scan", "verify-full", "verify-sample", "cli",
        "big-string", "big-hash")
DEFAULT_ROWS = ROWS[:7]  # the big-key rows fill a source of their own: asked for by name


def run(keys: int, *, redisshake: str | None = None, as_markdown: bool = False,
        only: tuple[str, ...] = DEFAULT_ROWS, big_mib: int = 500) -> str:
    say = (lambda s: print(s, file=sys.stderr, flush=True)) if as_markdown else \
        (lambda s: print(s, flush=True))
    say(f"machine: {machine()} (at the start)")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp_name, Fleet(Path(tmp_name) / "lab") as fleet:
        bench: list[Bench] = []

        def on_data() -> Bench:  # seeded only when a row needs the servers
            if not bench:
                bench.append(Bench(fleet, Path(tmp_name), keys, redisshake, say))
            return bench[0]
        def big(kind: str) -> list[Row]:
            rows = BigKey(fleet, Path(tmp_name), kind, big_mib, say).rows(
                run_timed, Row, Figure, KVMIGRATE)
            return [r for r in rows if isinstance(r, Row)]

        steps: dict[str, Callable[[], list[Row]]] = {
            "rdb": lambda: [on_data().copy_from_rdb()],
            "replica": lambda: [on_data().replica_mode()],
            "proxy": lambda: [on_data().proxy_mode()],
            "scan": lambda: [on_data().scan_mode()],
            "verify-full": lambda: [on_data().verify_full()],
            "verify-sample": lambda: [on_data().verify_sample()],
            "cli": cli_rows,
            "big-string": lambda: big("string"),
            "big-hash": lambda: big("hash"),
        }
        for name in only:
            say(f"running {name} ...")
            rows += steps[name]()
    say(f"machine: {machine()} (at the end)")
    text = markdown(rows, redisshake is not None) if as_markdown else \
        plain(rows, redisshake is not None)
    print(text, flush=True)
    return text
