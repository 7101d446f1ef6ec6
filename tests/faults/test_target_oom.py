"""A target that reaches maxmemory (noeviction): every mode that writes to it stops at the
first out-of-memory refusal with one line naming the command, key and database and what to
do (exit 4), and ``--resume`` finishes once memory was raised, with every acknowledged write.
Native and proxy mode, where the target is a replica and ignores maxmemory, stop once it
holds more than its limit instead of "succeeding" on an over-full target."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.lab.server import ServerProcess
from tests.faults.outcomes import Outcome, record
from tests.helpers import Result, run_cli
from tests.sync.test_replica import _follow as follow

KEYS = 20_000  # about 3.5 MiB on the source: more than the target's limit
SMALL = ["--maxmemory", "3mb", "--maxmemory-policy", "noeviction"]
MODE_ARGS = {"replica": [], "scan": ["--set-notify-keyspace-events"]}


def _servers(lab: Fleet) -> tuple[ServerProcess, ServerProcess]:
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0", extra_args=SMALL)
    seed(source.endpoint, keys=KEYS, profile="strings")
    return source, target


def _last_line(res: Result) -> str:
    return res.stderr.strip().splitlines()[-1]


def _acknowledged_writes(source: ServerProcess, n: int) -> list[bytes]:
    """``n`` writes the source acknowledged (one SET each, answered OK), their keys."""
    client = source.client()
    keys = [f"ack:{i}".encode() for i in range(n)]
    for key in keys:
        assert client.set(key, b"v" + key)
    return keys


def _lost(target: ServerProcess, keys: list[bytes]) -> int:
    client = target.client()
    return sum(1 for key in keys if client.get(key) != b"v" + key)


@pytest.mark.parametrize("mode", ["replica", "scan"])
def test_out_of_memory_stops_the_initial_copy_then_resume_finishes(
        mode: str, lab: Fleet, tmp_path: Path) -> None:
    source, target = _servers(lab)
    state = tmp_path / "state"
    started = time.monotonic()
    res = run_cli("sync", "--source", source.url, "--target", target.url, "--mode", mode,
                  "--state", str(state), "--verify-sample", "0", *MODE_ARGS[mode])
    assert res.code == 4, res.output
    line = _last_line(res)
    assert line.startswith("kvmigrate: error: the target ") and "is out of memory" in line
    assert "it refused RESTORE on key 'string:" in line and "in db 0" in line, line
    assert "OOM command not allowed" in line and "maxmemory" in line, line
    assert "then run again with --resume" in line, line
    assert "WARNING" not in res.output and "not written" not in res.output
    assert "lost the connection" not in res.output
    assert target.client().dbsize() < KEYS  # it stopped part-way

    keys = _acknowledged_writes(source, 200)  # written while the sync was stopped
    target.client().config_set("maxmemory", "0")
    again = run_cli("sync", "--source", source.url, "--target", target.url, "--mode", mode,
                    "--state", str(state), "--resume", *MODE_ARGS[mode])
    assert again.code == 0, again.output
    assert target.client().dbsize() == source.client().dbsize()
    lost = _lost(target, keys)
    assert lost == 0
    record(Outcome(fault="target reaches maxmemory (noeviction) during the initial copy",
                   mode=mode, outcome="stopped: exit 4, the target ... is out of memory: "
                                      "it refused RESTORE on key ... in db 0",
                   acknowledged=len(keys), lost=lost,
                   recover_s=round(time.monotonic() - started, 1),
                   note="continued with --resume after CONFIG SET maxmemory 0"))


def test_out_of_memory_while_following_stops_at_the_refused_write(
        lab: Fleet, tmp_path: Path) -> None:
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    seed(source.endpoint, keys=2000, profile="strings")
    state = tmp_path / "state"
    proc = follow(source, target, state, "--verify-sample", "0")
    try:
        used = int(target.client().info("memory")["used_memory"])
        target.client().config_set("maxmemory", str(used + 512 * 1024))
        client = source.client()
        big = b"x" * 16_384
        acknowledged = []
        for i in range(200):  # 3 MiB: more than the half MiB left
            assert client.set(f"big:{i}", big)
            acknowledged.append(f"big:{i}".encode())
        _, stderr = proc.communicate(timeout=60)  # it stops by itself
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 4, stderr
    line = stderr.strip().splitlines()[-1]
    assert "is out of memory: it refused SET on key 'big:" in line, line
    assert "in db 0 (source offset " in line and "--resume" in line, line

    target.client().config_set("maxmemory", "0")
    again = run_cli("sync", "--source", source.url, "--target", target.url, "--mode",
                    "replica", "--state", str(state), "--resume")
    assert again.code == 0, again.output
    tclient = target.client()
    lost = sum(1 for key in acknowledged if tclient.get(key) != big)
    assert lost == 0
    assert tclient.dbsize() == source.client().dbsize()
    record(Outcome(fault="target reaches maxmemory (noeviction) while following", mode="replica",
                   outcome="stopped: exit 4, the target ... is out of memory: it refused SET on "
                           "key ... (source offset N)", acknowledged=len(acknowledged),
                   lost=lost, note="continued with --resume (reloads: no exact offset)"))


def test_copy_stops_at_the_first_refusal(lab: Fleet, tmp_path: Path) -> None:
    source, target = _servers(lab)
    res = run_cli("copy", "--from-server", source.url, "--target", target.url)
    assert res.code == 4, res.output
    line = _last_line(res)
    assert "is out of memory: it refused RESTORE on key 'string:" in line, line
    assert "copy again with --flush-target" in line and "--resume" not in line, line
    record(Outcome(fault="target reaches maxmemory (noeviction)", mode="copy --from-server",
                   outcome="stopped: exit 4, the target ... is out of memory: it refused "
                           "RESTORE on key ...", acknowledged=0, lost=0,
                   note="a copy starts again with --flush-target"))


@pytest.mark.parametrize("mode", ["native", "proxy"])
def test_a_replica_target_over_its_maxmemory_is_a_stop(mode: str, lab: Fleet,
                                                       tmp_path: Path) -> None:
    """A replica ignores maxmemory: the copy completes on a target over its limit, which
    would refuse every write once promoted. The sync says so and stops."""
    source, target = _servers(lab)
    res = run_cli("sync", "--source", source.url, "--target", target.url, "--mode", mode,
                  "--state", str(tmp_path / "state"), "--verify-sample", "0")
    assert res.code == 4, res.output
    line = _last_line(res)
    assert "holds the copy but uses" in line and "above its maxmemory 3.0 MiB" in line, line
    assert "refuse writes (noeviction)" in line and "raise maxmemory" in line, line
    assert target.client().dbsize() == KEYS  # the data is all there: nothing was lost
    if mode == "native":
        target.client().config_set("maxmemory", "0")
        again = run_cli("sync", "--source", source.url, "--target", target.url, "--mode",
                        mode, "--state", str(tmp_path / "state"), "--resume")
        assert again.code == 0, again.output
    record(Outcome(fault="replica target over its maxmemory (it ignores the limit)", mode=mode,
                   outcome="stopped: exit 4, the target ... holds the copy but uses N MiB, "
                           "above its maxmemory", acknowledged=0, lost=0,
                   note="--resume once maxmemory was raised" if mode == "native" else
                   "proxy mode does not resume: a new run once maxmemory was raised"))
