"""Memory with one very big key (issue 17: peak RSS < 300 MiB "with a 500 MB single key").

A separate Redis 7.0 source holds a single key of ``mib`` MiB, filled with pseudo-random
bytes (so the RDB's LZF compression cannot shrink it): a string (the worst case: one
element) or a hash of 1 KiB fields. ``copy --from-rdb`` of its saved RDB, ``sync --mode
replica``, ``sync --mode scan`` and ``verify --full`` then run against fresh Valkey 8.0
targets, and each row shows the kvmigrate process's peak RSS; the native figure is the
target's own load of the same RDB at start-up, for scale."""

from __future__ import annotations

import json
import random
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.rdbfile import copy_rdb_argv, sync_argv
from migrate.lab.fleet import Fleet
from migrate.lab.server import ServerProcess

SOURCE, TARGET = "redis-7.0", "valkey-8.0"
CHUNK = 1 << 20  # bytes appended per command while filling the key
FIELD = 1024  # bytes per hash field
GOAL = "peak RSS < 300 MiB"
SCAN_EXTRA = {"scan": ("--set-notify-keyspace-events",), "replica": ()}


def fill(server: ServerProcess, kind: str, mib: int) -> None:
    """One key of ``mib`` MiB: ``big:string`` or ``big:hash``."""
    rng = random.Random(17)
    client = server.client()
    if kind == "string":
        for _ in range(mib):
            client.append("big:string", rng.randbytes(CHUNK))
        return
    fields = mib * (CHUNK // FIELD)
    for start in range(0, fields, 1000):
        pipe = client.pipeline(transaction=False)
        for n in range(start, min(fields, start + 1000)):
            pipe.hset("big:hash", f"f{n:09d}", rng.randbytes(FIELD))
        pipe.execute()


class BigKey:
    """The three rows for one key type; ``run_timed`` and the row types come from the
    table (passed in, so this module imports nothing of it)."""

    def __init__(self, fleet: Fleet, tmp: Path, kind: str, mib: int,
                 say: Callable[[str], None]):
        self.fleet, self.tmp, self.kind, self.mib = fleet, tmp / f"big-{kind}", kind, mib
        self.tmp.mkdir()
        self.source = fleet.start(SOURCE, extra_args=["--repl-diskless-sync-delay", "0",
                                                      "--proto-max-bulk-len", "1gb"])
        started = time.perf_counter()
        fill(self.source, kind, mib)
        self.source.client().save()
        self.rdb = self.tmp / "source.rdb"
        shutil.copy(Path(self.source.directory) / "dump.rdb", self.rdb)
        used = self.source.client().memory_usage(f"big:{kind}") or 0
        say(f"big key: one {kind} of {mib} MiB ({used / 2**20:.0f} MiB in {SOURCE}), "
            f"RDB {self.rdb.stat().st_size / 2**20:.0f} MiB, made in "
            f"{time.perf_counter() - started:.0f} s")

    def _target(self, *extra: str) -> ServerProcess:
        return self.fleet.start(TARGET, extra_args=["--proto-max-bulk-len", "1gb", *extra])

    def _check(self, target: ServerProcess, what: str) -> None:
        want = self.source.client().memory_usage(f"big:{self.kind}") or 0
        got = target.client().memory_usage(f"big:{self.kind}") or 0
        if not got or abs(got - want) > want // 10:
            raise RuntimeError(f"{what}: the big {self.kind} is {got:,} bytes on the target, "
                               f"{want:,} on the source")

    def rows(self, run_timed: Callable[..., tuple[float, float, str, float]],
             row: Callable[..., object], figure: Callable[..., object],
             kvmigrate: list[str]) -> list[object]:
        what = f"one {self.mib} MiB {self.kind}"
        native_dir = self.tmp / "native-load"
        native_dir.mkdir()
        shutil.copy(self.rdb, native_dir / "dump.rdb")
        native = self._target("--dir", str(native_dir))
        found = re.search(r"DB loaded from disk: ([\d.]+) seconds",
                          Path(native.log_path).read_text())
        native.stop()
        load = figure(float(found.group(1)) if found else 0.0, "loading the RDB at start")
        out: list[object] = []

        target = self._target()
        seconds, rss, text, cpu = run_timed(copy_rdb_argv(kvmigrate, self.rdb, target.url))
        path = json.loads(text).get("path", "record by record")
        self._check(target, "copy --from-rdb")
        target.stop()
        out.append(row(f"{what}: `copy --from-rdb`", GOAL,
                       figure(seconds, f"{path}; {cpu:.1f} s CPU", rss), load))
        scan = self._target()
        for mode, server in (("scan", scan), ("replica", target := self._target())):
            seconds, rss, _, cpu = run_timed(sync_argv(kvmigrate, self.source.url, server.url,
                                                       mode, self.tmp / f"state-{mode}",
                                                       *SCAN_EXTRA[mode]))
            self._check(server, f"sync --mode {mode}")
            out.append(row(f"{what}: `sync --mode {mode}`", GOAL,
                           figure(seconds, f"process start to caught up; {cpu:.1f} s CPU",
                                  rss), load if mode == "replica" else None))
        scan.stop()

        seconds, rss, text, cpu = run_timed([*kvmigrate, "verify", "--source", self.source.url,
                                             "--target", target.url, "--full",
                                             "--format", "json"])
        report = json.loads(text)
        if not report.get("ok"):
            raise RuntimeError(f"verify --full of the big {self.kind}: {text[:500]}")
        target.stop()
        out.append(row(f"{what}: `verify --full`", GOAL,
                       figure(seconds, f"ok; {cpu:.1f} s CPU", rss)))
        self.source.stop()
        return out
