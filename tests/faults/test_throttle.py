"""``--max-ops-per-s``: the limiter paces by its own clock (a unit test with a fake clock), and
scan mode and verify send every read to a real source through it, with the source's latency
measured meanwhile. No wall-clock timing is asserted: the limiter's own accounting is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migrate.errors import UsageError
from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.lab.server import ServerProcess
from migrate.protocol.ratelimit import RateLimiter
from migrate.state.paths import StatePaths
from tests.cluster.test_cluster_sync import LabCluster, fill
from tests.faults.outcomes import Outcome, record
from tests.helpers import run_cli


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_limiter_spreads_commands_over_ops_over_rate_seconds() -> None:
    clock = FakeClock()
    limiter = RateLimiter(100, clock=clock, sleep=clock.sleep)
    for n in [1, 10, 50, 1, 1, 37]:
        limiter.acquire(n)
        clock.now += 0.001  # the command's own round trip
    assert limiter.ops == 100 and limiter.batches == 6
    assert limiter.span_s >= (limiter.ops - limiter.last_n) / 100  # (100 - 37) / 100 s
    assert limiter.span_s == pytest.approx(0.63)
    assert limiter.waited_s == pytest.approx(0.63 - 5 * 0.001)
    idle = RateLimiter(100, clock=clock, sleep=clock.sleep)  # a caller slower than the rate
    for _ in range(5):
        idle.acquire(1)
        clock.now += 1.0
    assert idle.waited_s == 0
    with pytest.raises(UsageError):
        RateLimiter(0)


def _commands(server: ServerProcess) -> dict[str, int]:
    stats = server.client().info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def _check(throttle: dict, latency: dict, rate: float, reads: int) -> None:
    assert throttle["max_ops_per_s"] == rate
    assert throttle["ops"] >= reads > 0  # every read of the source went through it
    assert throttle["span_s"] >= (throttle["ops"] - throttle["last_batch"]) / rate
    assert latency["samples"] >= 1 and latency["min_ms"] <= latency["median_ms"] \
        <= latency["max_ms"]


def test_scan_and_verify_read_the_source_through_the_limiter(lab: Fleet, tmp_path: Path
                                                             ) -> None:
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    seed(source.endpoint, keys=3000, profile="strings")
    rate = 20_000.0
    before = _commands(source)
    res = run_cli("sync", "--source", source.url, "--target", target.url, "--mode", "scan",
                  "--set-notify-keyspace-events", "--verify-sample", "0", "--no-heartbeat",
                  "--max-ops-per-s", f"{rate:g}", "--state", str(tmp_path / "state"))
    assert res.code == 0, res.output
    after = _commands(source)
    reads = sum(after.get(c, 0) - before.get(c, 0) for c in ("scan", "dump", "pttl"))
    status = json.loads((tmp_path / "state" / "ledger.json").read_text())["status"]
    _check(status["throttle"], status["source_latency"], rate, reads)
    assert "source reads:" in res.stdout and "source latency (PING" in res.stdout, res.output

    before = _commands(source)
    res = run_cli("verify", "--source", source.url, "--target", target.url, "--full",
                  "--max-ops-per-s", f"{rate:g}", "--format", "json")
    assert res.code == 0, res.output
    after = _commands(source)
    report = json.loads(res.stdout)
    reads = sum(after.get(c, 0) - before.get(c, 0) for c in ("scan", "dump", "type"))
    _check(report["throttle"], report["source_latency"], rate, reads)
    table = run_cli("verify", "--source", source.url, "--target", target.url,
                    "--max-ops-per-s", f"{rate:g}")
    assert table.code == 0 and "source reads:" in table.stdout and \
        "source latency (PING" in table.stdout, table.output
    record(Outcome(fault="a production source read with --max-ops-per-s", mode="scan, verify",
                   outcome="continued", acknowledged=0, lost=0,
                   note="reads paced by the limiter; PING latency min/median/max reported"))


def test_the_limit_is_refused_where_it_cannot_apply(lab: Fleet, tmp_path: Path) -> None:
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    res = run_cli("sync", "--source", source.url, "--target", target.url, "--mode",
                  "replica", "--max-ops-per-s", "100", "--state", str(tmp_path / "s"))
    assert res.code == 2 and "--max-ops-per-s paces scan mode's reads" in res.stderr, \
        res.output


def test_each_shard_of_a_cluster_scan_has_its_own_limit(
        lab_cluster: LabCluster, lab: Fleet, tmp_path: Path) -> None:
    source = lab_cluster("redis-7.0", shards=2)
    target = lab.start("valkey-8.0")
    fill(source, 1000)
    rate = 20_000.0
    res = run_cli("sync", "--source", source.url, "--target", target.url, "--mode", "scan",
                  "--set-notify-keyspace-events", "--verify-sample", "0",
                  "--max-ops-per-s", f"{rate:g}", "--state", str(tmp_path / "state"))
    assert res.code == 0, res.output[-3000:]
    for i in range(2):
        shard = json.loads(StatePaths(StatePaths(tmp_path / "state").shard(i)).ledger.read_text())
        _check(shard["status"]["throttle"], shard["status"]["source_latency"], rate, 1)
