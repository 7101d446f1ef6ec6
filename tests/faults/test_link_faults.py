"""The link between kvmigrate and the source misbehaves (issue 19): a TCP fault proxy between
them cuts it during the RDB transfer and during the stream, stalls it, slows it to a trickle,
resets it again and again, and keeps it down past ``--reconnect-deadline``. A writer records
every write the source acknowledged meanwhile; after recovery the target must hold each of
them (key by key) and equal the source, or the run must stop with one line, exit 4, and
``--resume`` must continue it. Each test records its row of docs/reliability.md."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.lab.server import ServerProcess
from tests.faults.acked import AckedWriter, has_write, lost_writes
from tests.faults.faultproxy import FaultProxy
from tests.faults.outcomes import Outcome, record
from tests.helpers import run_cli
from tests.sync.writes import Follow, differences, stop, wait_applied

SEED_KEYS = 3000
RDB_CUT_AT = 64 * 1024  # bytes of the transfer that pass before a mid-RDB cut


def _sync(source_url: str, target_url: str, state: Path, *extra: str,
          mode: str = "replica") -> Follow:
    return Follow([sys.executable, "-m", "migrate", "sync", "--source", source_url,
                   "--target", target_url, "--mode", mode, "--follow", "--state", str(state),
                   "--status-json", str(_status_path(state)), *extra],
                  state.parent / f"{state.name}-{time.monotonic_ns()}")


def _status_path(state: Path) -> Path:
    return state.parent / f"{state.name}.json"


def _status(state: Path) -> dict[str, Any]:
    path = _status_path(state)
    return json.loads(path.read_text())["status"] if path.exists() else {}


def _until(condition: Callable[[], bool], run: Follow, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if run.poll() is not None:
            raise AssertionError(f"the sync ended (exit {run.poll()}) waiting for {what}: "
                                 f"{run.err.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}: "
                                 f"{run.err.read_text()[-3000:]}")
        time.sleep(0.05)


def _following(run: Follow) -> bool:
    return "following the source" in run.err.read_text()


def _recovered(target: ServerProcess, writer: AckedWriter, run: Follow, since: float) -> float:
    """Seconds from ``since`` (the fault) until the target holds the write the source
    acknowledged when this was called: caught up past the fault."""
    n = writer.acknowledged
    _until(lambda: has_write(target, n), run, f"write {n} on the target")
    return time.monotonic() - since


def _finish(source: ServerProcess, target: ServerProcess, writer: AckedWriter,
            run: Follow) -> tuple[int, list[str], str]:
    """Stop the writer, let the sync catch up and stop it; (acknowledged, lost, stderr)."""
    acknowledged = writer.stop()
    wait_applied(source, target, timeout=60)
    lost = lost_writes(target, acknowledged)
    assert differences(source, target) == []
    code, _out, err = stop(run)
    assert code == 0, err[-3000:]
    return acknowledged, lost, err


def _recover(run: Follow, state: Path, target: ServerProcess, writer: AckedWriter,
             since: float, figure: str, value: int) -> tuple[float, dict[str, Any]]:
    """Once following and past the fault: (seconds to recover, the status once its
    ``figure`` reads ``value``)."""
    _until(lambda: _following(run), run, "the follow phase", timeout=120)
    recover_s = _recovered(target, writer, run, since)
    _until(lambda: _status(state).get(figure) == value, run, f"{figure} {value} in the status")
    return recover_s, _status(state)


def _stopped(run: Follow, words: str) -> tuple[str, str]:
    """The run ends with exit 4 and one error line that says ``words``: (stderr, the line)."""
    code = run.wait(60)
    err = run.err.read_text()
    lines = [ln for ln in err.splitlines() if ln.startswith("kvmigrate: error:")]
    assert code == 4, err[-3000:]
    assert len(lines) == 1 and words in lines[0], err[-3000:]
    return err, lines[0]


def _record(fault: str, outcome: str, acknowledged: int, lost: list[str], recover_s: float,
            note: str, mode: str = "replica") -> None:
    """This test's row of docs/reliability.md; then no acknowledged write may be lost."""
    record(Outcome(fault, mode, outcome, acknowledged, len(lost), round(recover_s, 1), note))
    assert lost == []


@dataclass
class Rig:
    source: ServerProcess
    target: ServerProcess
    proxy: FaultProxy  # kvmigrate's way to the source
    writer: AckedWriter  # the application, on the source directly
    state: Path

    side: str = "source"  # the proxy stands before the source, or before the target

    def sync(self, *extra: str, mode: str = "replica", state: Path | None = None) -> Follow:
        """``sync --follow`` through the proxy (into ``state``, by default the rig's)."""
        return _sync(*self.urls(), state or self.state, *extra, mode=mode)

    def urls(self) -> tuple[str, str]:
        """(source, target) as kvmigrate reaches them: one of them through the proxy."""
        if self.side == "target":
            return self.source.url, self.proxy.url()
        return self.proxy.url(), self.target.url

    def resume(self, since: float, says: str) -> tuple[int, list[str], float]:
        """Stop the writer, ``sync --resume`` (which must say ``says``) and check the
        target: (acknowledged, lost, seconds from ``since``)."""
        acknowledged = self.writer.stop()  # the resumed run catches up to the last one
        source, target = self.urls()
        resumed = run_cli("sync", "--source", source, "--target", target, "--mode",
                          "replica", "--state", str(self.state), "--resume")
        assert resumed.code == 0, resumed.output[-3000:]
        assert says in resumed.stderr
        recover_s = time.monotonic() - since
        lost = lost_writes(self.target, acknowledged)
        assert differences(self.source, self.target) == []
        return acknowledged, lost, recover_s

    def recover(self, run: Follow, since: float, figure: str,
                value: int) -> tuple[float, dict[str, Any]]:
        return _recover(run, self.state, self.target, self.writer, since, figure, value)

    def finish(self, run: Follow) -> tuple[int, list[str], str]:
        return _finish(self.source, self.target, self.writer, run)


@pytest.fixture
def rig(lab: Fleet, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Rig]:
    """Servers, a fault proxy before the source (or the target: parametrize ``rig`` with
    "target", indirect) and the writer."""
    side = getattr(request, "param", "source")
    # no wait before a diskless transfer (5 s by default): each new full sync starts at once
    source = lab.start("redis-7.0", extra_args=["--repl-diskless-sync-delay", "0"])
    target = lab.start("valkey-8.0")
    seed(source.endpoint, keys=SEED_KEYS)
    behind = source if side == "source" else target
    with FaultProxy("127.0.0.1", behind.port) as proxy, AckedWriter(source) as writer:
        yield Rig(source, target, proxy, writer, tmp_path / "s", side)


def test_cut_mid_rdb_starts_the_transfer_again(rig: Rig) -> None:
    rig.writer.wait_for(50)
    rig.proxy.cut_after(RDB_CUT_AT)  # the first replication link, 64 KiB into its RDB
    run = rig.sync()
    rig.proxy.wait(lambda: rig.proxy.cuts == 1, 60, "the cut mid-RDB")
    cut_at = time.monotonic()
    first = rig.proxy.replication_links()[0]
    assert first.down == RDB_CUT_AT and first.ended == "reset"
    recover_s, figures = rig.recover(run, cut_at, "transfers_restarted", 1)
    acknowledged, lost, err = rig.finish(run)
    assert "dropped during the RDB transfer" in err and "starting the transfer again" in err
    assert figures["reconnects"] == 1 and "link dropped" in figures["last_reconnect_reason"]
    assert not (rig.state / "spool" / "rdb-1.rdb").exists()  # the cut transfer's spool
    _record("link cut mid-RDB (source side)", "continued", acknowledged, lost, recover_s,
            "a new full sync; the cut one discarded")


@pytest.mark.parametrize("mode", ["replica", "proxy"])
def test_cut_mid_stream_continues_by_partial_resync(rig: Rig, mode: str) -> None:
    run = rig.sync(mode=mode)
    _until(lambda: _following(run), run, "the follow phase")
    rig.writer.wait_for(rig.writer.acknowledged + 50)
    assert rig.proxy.cut(lambda li: li.replication) == 1
    cut_at = time.monotonic()
    recover_s, figures = rig.recover(run, cut_at, "partial_resyncs", 1)
    acknowledged, lost, err = rig.finish(run)
    assert "partial resync accepted" in err
    assert figures["reconnects"] == 1 and figures["transfers_restarted"] == 0
    _record("link cut mid-stream (source side)", "continued", acknowledged, lost, recover_s,
            "partial resync (PSYNC continue)", mode)


def test_repeated_resets_mid_rdb(rig: Rig) -> None:
    rig.writer.wait_for(50)
    rig.proxy.cut_after(RDB_CUT_AT, times=3)  # three transfers in a row, each at 64 KiB
    run = rig.sync()
    rig.proxy.wait(lambda: rig.proxy.cuts == 3, 90, "three cuts mid-RDB")
    cut_at = time.monotonic()
    recover_s, figures = rig.recover(run, cut_at, "transfers_restarted", 3)
    acknowledged, lost, err = rig.finish(run)
    assert [li.down for li in rig.proxy.replication_links()[:3]] == [RDB_CUT_AT] * 3
    assert figures["reconnects"] == 3 and err.count("starting the transfer again") == 3
    _record("link reset 3 times mid-RDB (source side)", "continued", acknowledged, lost,
            recover_s, "each reset: a new full sync")


def test_stall_is_reported_and_survived(rig: Rig) -> None:
    run = rig.sync()
    _until(lambda: _following(run), run, "the follow phase")
    assert rig.proxy.stall(lambda li: li.replication) == 1
    stalled_at = time.monotonic()
    _until(lambda: "source link stalled for" in run.err.read_text(), run,
           "the stall to be reported")
    _until(lambda: (_status(rig.state).get("source_link_stalled_s") or 0) >= 5, run,
           "the stall in the status")
    rig.proxy.resume()
    recover_s = _recovered(rig.target, rig.writer, run, stalled_at)
    acknowledged, lost, err = rig.finish(run)
    assert "source link moving again" in err
    _record("link stalled (no bytes, socket open), then resumed", "continued", acknowledged,
            lost, recover_s, "reported as 'source link stalled for N s'")


def test_trickle(rig: Rig) -> None:
    rig.writer.wait_for(50)
    rig.proxy.trickle(256 * 1024)  # the replication link: RDB and stream at 256 KiB/s
    started = time.monotonic()
    run = rig.sync()
    recover_s, _figures = rig.recover(run, started, "reconnects", 0)  # slow is not dropped
    acknowledged, lost, _err = rig.finish(run)
    _record("link slowed to 256 KiB/s (whole run)", "continued", acknowledged, lost,
            recover_s, "time is the whole sync")


def test_link_down_past_the_deadline_stops_and_resumes(rig: Rig) -> None:
    run = rig.sync("--reconnect-deadline", "3")
    _until(lambda: _following(run), run, "the follow phase")
    rig.proxy.refuse_replication()
    assert rig.proxy.cut(lambda li: li.replication) == 1
    cut_at = time.monotonic()
    err, line = _stopped(run, "still failing 3 s after the fault")
    assert "--resume" in line
    assert err.count("attempt ") >= 2  # each attempt noted ...
    assert _status(rig.state)["reconnect_attempts_failed"] >= 2  # ... and counted
    rig.proxy.resume()
    acknowledged, lost, recover_s = rig.resume(cut_at, "partial resync accepted")
    _record("link down past --reconnect-deadline (source side)",
            "stopped: exit 4, 'still failing 3 s after the fault'; --resume continued",
            acknowledged, lost, recover_s, "time includes the deadline and the resumed run")


def test_proxy_mode_cut_mid_rdb_stops_and_runs_again(rig: Rig) -> None:
    """Proxy mode streams the RDB to the target as it arrives: a cut transfer cannot be
    started again in place, so the run stops (one line, exit 4); a new run loads again."""
    rig.writer.wait_for(50)
    rig.proxy.cut_after(RDB_CUT_AT)
    run = rig.sync(mode="proxy")
    rig.proxy.wait(lambda: rig.proxy.cuts == 1, 60, "the cut mid-RDB")
    cut_at = time.monotonic()
    _stopped(run, "cut during the RDB transfer")
    assert rig.target.client().info("replication")["role"] == "master"  # given back
    # it loaded as the RDB arrived: what it had loaded is dropped, and its setting put back
    assert rig.target.client().dbsize() == 0
    assert rig.target.client().config_get("repl-diskless-load") == {
        "repl-diskless-load": "disabled"}
    again = rig.sync("--flush-target", mode="proxy", state=rig.state.with_name("again"))
    recover_s, _figures = _recover(again, rig.state.with_name("again"), rig.target,
                                   rig.writer, cut_at, "reconnects", 0)
    acknowledged, lost, _err = rig.finish(again)
    _record("link cut mid-RDB (source side)",
            "stopped: exit 4, 'proxy mode cannot start the target's load again in place'; "
            "a new run with --flush-target continued", acknowledged, lost, recover_s,
            "time includes the new run's full sync", "proxy")


@pytest.mark.parametrize("rig", ["target"], indirect=True)
def test_target_link_cut_mid_stream_stops_and_resume_loads_again(rig: Rig) -> None:
    """The target's link dropped with commands sent and unanswered: some may have been
    applied, so replaying from the last answered offset could apply them twice (seen: an
    INCR and an RPUSH applied twice after --resume). The run stops (exit 4, one line) and
    --resume flushes the target and loads it again."""
    run = rig.sync()
    _until(lambda: _following(run), run, "the follow phase")
    before = {li.number: li.up for li in rig.proxy.open_links()}
    rig.writer.wait_for(rig.writer.acknowledged + 300)
    # the stream's writer: the open link the writes went up
    stream = max(rig.proxy.open_links(), key=lambda li: li.up - before.get(li.number, 0))
    assert rig.proxy.cut(lambda li: li is stream) == 1
    cut_at = time.monotonic()
    _stopped(run, "the target may have applied commands it did not answer")
    acknowledged, lost, recover_s = rig.resume(cut_at, "flushing the target and loading again")
    _record("link cut mid-stream (target side)",
            "stopped: exit 4, 'the target may have applied commands it did not answer'; "
            "--resume loaded again", acknowledged, lost, recover_s,
            "nothing applied twice; time includes the resumed run's full sync")


def test_native_mode_target_rebuilds_its_own_link(rig: Rig) -> None:
    """Native mode: the target replicates from the source itself (through the proxy here),
    so a cut mid-RDB and a cut mid-stream are the target's to recover from; kvmigrate
    follows and nothing acknowledged is lost."""
    rig.writer.wait_for(50)
    rig.proxy.cut_after(RDB_CUT_AT)  # the target's first transfer, 64 KiB in
    run = rig.sync(mode="native")
    rig.proxy.wait(lambda: rig.proxy.cuts == 1, 60, "the cut mid-RDB")
    cut_at = time.monotonic()
    _until(lambda: _following(run), run, "the follow phase", timeout=120)
    recover_rdb_s = _recovered(rig.target, rig.writer, run, cut_at)
    assert rig.proxy.cut(lambda li: li.replication) == 1  # and once mid-stream
    cut_at = time.monotonic()
    recover_s = _recovered(rig.target, rig.writer, run, cut_at)
    acknowledged, lost, _err = rig.finish(run)
    assert len(rig.proxy.replication_links()) >= 3  # the target linked again twice
    _record("link cut mid-RDB, then mid-stream (source side)", "continued", acknowledged,
            lost, max(recover_rdb_s, recover_s),
            "the target's own replication reconnects; time is the longer of the two",
            "native")
