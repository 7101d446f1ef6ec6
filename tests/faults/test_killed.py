"""kvmigrate itself is killed (issue 19): SIGKILL of ``sync --follow`` in each phase (the
handshake, the RDB transfer, the replay of the stream, the end-of-catch-up verification),
then ``sync --resume``: the target must hold every write the source acknowledged, key by key.

"In phase X" is a condition, never a moment: the fault proxy before the source holds each
phase open (a trickle of the replication link's first bytes, of its RDB, a stream larger
than the trickle lets through, a trickle of the verification's reads once the ledger says
``verify``) and the test kills once the proxy's byte counts or the state folder say the run
is in that phase.

The cut-over is killed the same way: while postponed and during its write pause, and inside
its pre-checks, its promotion (native mode), its fence (before and after the source took it)
and its heartbeat key's deletion on the target (after the unpause), each held open by the
proxy stalling its connection the moment it sends the step's command; then the second run
must say what happened and finish or name the next step, and no acknowledged write may be
missing from the server that ends up primary."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from migrate.lab.server import ServerProcess
from migrate.verify.model import HEARTBEAT_KEY
from tests.faults import test_link_faults
from tests.faults.acked import lost_writes
from tests.faults.faultproxy import Link
from tests.faults.test_link_faults import Rig, _record, _status, _until
from tests.helpers import run_cli
from tests.sync.writes import Follow, differences

rig = test_link_faults.rig  # the servers, the fault proxy and the writer

FULLRESYNC = len(b"+FULLRESYNC ")  # the handshake's answer starts so


def _ledger_phase(state: Path) -> str | None:
    try:
        return json.loads((state / "ledger.json").read_text())["status"].get("phase")
    except (OSError, ValueError, KeyError):
        return None


@contextmanager
def _ballast(source: ServerProcess) -> Iterator[None]:
    """Large writes to one key, so the stream outgrows the trickle: the replay cannot end."""
    stop = threading.Event()
    client = source.client()
    value = b"b" * 32 * 1024

    def write() -> None:
        while not stop.wait(0.005):
            client.set("ballast", value)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def _kill_in(rig: Rig, run: Follow, condition: Callable[[], bool], what: str) -> float:
    _until(condition, run, what, timeout=120)
    run.kill()  # SIGKILL: no handler runs, nothing is saved on the way out
    run.wait(30)
    return time.monotonic()


def _first_replication(rig: Rig) -> Link | None:
    links = rig.proxy.replication_links()
    return links[0] if links else None


def _answered(link: Link) -> int:
    """Bytes of the answer to PSYNC that came down ``link``."""
    return link.down - link.down_at_replication


def _handshake(rig: Rig) -> tuple[Follow, float]:
    rig.proxy.trickle(1)  # the replication link's answer, a byte a tick
    run = rig.sync()
    killed = _kill_in(rig, run, lambda: (li := _first_replication(rig)) is not None
                      and _answered(li) < FULLRESYNC // 2, "the PSYNC sent, its answer not read")
    link = _first_replication(rig)
    assert link is not None and _answered(link) < FULLRESYNC  # +FULLRESYNC was not read
    return run, killed


def _rdb(rig: Rig) -> tuple[Follow, float]:
    rig.proxy.trickle(128 * 1024)
    run = rig.sync()
    killed = _kill_in(rig, run, lambda: (li := _first_replication(rig)) is not None
                      and li.down >= 64 * 1024 and rig.target.client().dbsize() > 0,
                      "64 KiB of the RDB received, some of it loaded")
    assert _ledger_phase(rig.state) == "catch-up"
    assert not _status(rig.state).get("commands")  # no stream replayed yet: mid-RDB
    return run, killed


def _replay(rig: Rig) -> tuple[Follow, float]:
    rig.proxy.trickle(512 * 1024)
    run = rig.sync()
    with _ballast(rig.source):
        killed = _kill_in(rig, run, lambda: _status(rig.state).get("sync_phase") == "streaming"
                          and (_status(rig.state).get("commands") or 0) > 0,
                          "the stream being replayed")
    assert _ledger_phase(rig.state) == "catch-up"
    return run, killed


def _verification(rig: Rig) -> tuple[Follow, float]:
    # the verification's reads (not the replication link) slow down once the ledger says
    # verify: the phase stays open until the kill
    rig.proxy.trickle(2048, lambda li: not li.replication
                      and _ledger_phase(rig.state) == "verify")
    run = rig.sync("--verify-sample", "2000")
    killed = _kill_in(rig, run, lambda: _ledger_phase(rig.state) == "verify",
                      "the verification")
    return run, killed


KILLED = "resume: the previous run was killed"
# phase: (how to kill in it, its name in the row, what the resumed run says)
PHASES: dict[str, tuple[Callable[[Rig], tuple[Follow, float]], str, str]] = {
    "handshake": (_handshake, "the handshake", "replica link up"),  # nothing loaded yet
    "rdb": (_rdb, "the RDB transfer", "no applied offset was recorded; flushing the target"),
    # past the load, commands sent after the recorded offset may have been applied: not
    # replayed from it (seen: an RPUSH and an INCR applied twice) but loaded again
    "replay": (_replay, "the replay of the stream", KILLED),
    "verification": (_verification, "the end-of-catch-up verification", KILLED),
}


@pytest.mark.parametrize("phase", list(PHASES))
def test_sync_sigkilled_then_resumed(rig: Rig, phase: str) -> None:
    kill, words, says = PHASES[phase]
    rig.writer.wait_for(50)
    _run, killed = kill(rig)
    rig.proxy.resume()
    acknowledged, lost, recover_s = rig.resume(killed, says)
    _record(f"kvmigrate SIGKILLed during {words}, then --resume",
            "killed; --resume caught up", acknowledged, lost, recover_s,
            f"the resumed run: '{says.strip()}'; time is the resumed run's")


# --- the cut-over killed ------------------------------------------------------------------------
PAUSE_MS = 4000  # the cut-over's --max-pause-ms: the source's own bound on the write pause


def _cutover(rig: Rig, *extra: str) -> Follow:
    return Follow([sys.executable, "-m", "migrate", "cutover", "--state", str(rig.state),
                   "--yes", "--max-pause-ms", str(PAUSE_MS), *extra],
                  rig.state.parent / f"cutover-{time.monotonic_ns()}")


# step: (its name in the row, what the cut-over prints once it is in it, the row's note)
STEPS = {
    "postponed": ("while postponed (before the pause)", "postponed ...",
                  "never paused; the second run says where the first was stopped"),
    "pause": ("during the write pause", "catch-up ...",  # paused, waiting for the target
              "the pause ended by CLIENT PAUSE's own timeout (4 s); time includes it"),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_cutover_sigkilled_then_run_again(rig: Rig, step: str, tmp_path: Path) -> None:
    """A cut-over killed before promotion leaves the source serving writes (a pause ends by
    the server's own timeout), and running it again says so and completes it."""
    words, in_step, note = STEPS[step]
    run = rig.sync()
    _until(lambda: "following the source" in run.err.read_text(), run, "the follow phase")
    postpone = tmp_path / "hold"
    if step == "postponed":
        postpone.touch()
    else:  # the sync stops applying: the catch-up inside the pause waits for it
        assert rig.proxy.stall(lambda li: li.replication) == 1
        rig.writer.wait_for(rig.writer.acknowledged + 20)  # the source moves on meanwhile
    cutover = _cutover(rig, "--postpone-file", str(postpone))
    _until(lambda: in_step in cutover.err.read_text(), cutover, f"the cut-over's {step}")
    cutover.kill()
    cutover.wait(30)
    killed = time.monotonic()
    record = json.loads((rig.state / "cutover.json").read_text())
    assert record["running"] == ("postponed" if step == "postponed" else "catch-up")
    # the source serves writes again: a write waits at most for the pause's own bound
    client = redis.Redis(port=rig.source.port, socket_timeout=PAUSE_MS / 1000 + 10)
    assert client.set("written-after-the-kill", 1)
    rig.writer.wait_for(rig.writer.acknowledged + 20, timeout=PAUSE_MS / 1000 + 10)
    rig.proxy.resume()
    acknowledged = rig.writer.stop()  # a fenced source refuses the writer's next writes
    again = run_cli("cutover", "--state", str(rig.state), "--yes")
    assert again.code == 0, again.output[-3000:]
    assert f"an earlier cut-over was stopped during step '{record['running']}', before " \
           "promotion" in again.stderr
    assert run.wait(30) == 0  # promotion stopped the sync
    lost = lost_writes(rig.target, acknowledged)
    assert json.loads((rig.state / "cutover.json").read_text())["running"] is None
    _record(f"cutover SIGKILLed {words}, then run again",
            "killed; the source kept serving; the cut-over run again completed",
            acknowledged, lost, time.monotonic() - killed,
            note, "cutover")


def _running(state: Path) -> str | None:
    """The step cutover.json says the cut-over is in (None: none, or no record yet)."""
    try:
        return json.loads((state / "cutover.json").read_text()).get("running")
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class Inside:
    """A step the cut-over is held inside: the fault proxy stands before the server the
    step talks to and stalls the cut-over's connection when it sends the step's command."""

    side: str  # the proxy before the "source" or the "target"
    step: str
    command: bytes  # a piece of the step's command, as it goes over the wire
    delivered: bool  # stalled once the server has the command (its reply waits), or before
    words: str  # the fault, in the row
    note: str
    mode: str = "replica"  # the sync's (native: no run beside the cut-over)

    @property
    def took_effect(self) -> bool:
        """Killed once the source was fenced: the second run says the cut-over took effect."""
        return self.step == "drop-heartbeat" or (self.delivered and self.step == "fence")


INSIDE = {
    "precheck": Inside("source", "precheck", b"$4\r\nINFO\r\n$11\r\nreplication", False,
                       "inside the pre-checks (its INFO to the source stalled)",
                       "never paused; the second run cut over"),
    "heartbeat": Inside("target", "drop-heartbeat",
                        b"$3\r\nDEL\r\n$21\r\n__kvmigrate:heartbeat", False,
                        "deleting its heartbeat key on the target (after the unpause), then "
                        "rolled back",
                        "the second run said the cut-over took effect; rollback lifted the "
                        "recorded fence; lost counted on the old source, primary again"),
    "fence": Inside("source", "fence", b"min-replicas-to-write\r\n$7\r\n1000000", False,
                    "inside the fence, before the source took it",
                    "the pause ended by its own bound (4 s), the source not fenced; the "
                    "second run named the next steps (sync --resume, cut over again); time "
                    "includes them"),
    "fenced": Inside("source", "fence", b"min-replicas-to-write\r\n$7\r\n1000000", True,
                     "inside the fence, after the source took it (its reply stalled), then "
                     "rolled back",
                     "the second run said the cut-over took effect; rollback lifted the "
                     "recorded fence; lost counted on the old source, primary again"),
    "promote-native": Inside("target", "promote", b"$9\r\nREPLICAOF\r\n$2\r\nNO\r\n$3\r\nONE",
                             True, "inside the promotion, after the target took REPLICAOF NO "
                             "ONE (its reply stalled)",
                             "the second run saw the target a primary and named the next steps "
                             "(sync --resume, cut over again); time includes them", "native"),
}

AFTER_PROMOTION = ("the target was promoted (the sync stopped) but the source was not fenced, "
                   "so writes made to it since are not on the target")


def _sync_for_the_cutover(rig: Rig, mode: str, *extra: str) -> Follow | None:
    """``sync --follow`` once it follows (replica mode); native mode: ``sync`` until the
    target is a caught-up replica (None: no run beside the cut-over)."""
    if mode == "native":
        source, target = rig.urls()
        done = run_cli("sync", "--source", source, "--target", target, "--mode", "native",
                       "--state", str(rig.state), *extra)
        assert done.code == 0, done.output[-3000:]
        return None
    run = rig.sync(*extra, mode=mode)
    _until(lambda: "following the source" in run.err.read_text(), run, "the follow phase")
    return run


@pytest.mark.parametrize(("rig", "case"), [(c.side, name) for name, c in INSIDE.items()],
                         indirect=["rig"])
def test_cutover_sigkilled_inside_a_step(rig: Rig, case: str) -> None:
    """The cut-over held inside precheck, promote, fence or drop-heartbeat (its connection
    to the server the step talks to stalled by the proxy once it sent the step's command),
    then SIGKILLed: the source serves writes again or the second cut-over says it no longer
    should, that second run completes or names the next step in one line, and following it
    loses no acknowledged write on the server that ends up primary."""
    inside = INSIDE[case]
    run = _sync_for_the_cutover(rig, inside.mode)
    rig.writer.wait_for(rig.writer.acknowledged + 20)
    before = len(rig.proxy.links)  # the sync's own links: never stalled
    rig.proxy.stall_at(lambda li, data: li.number > before and inside.command in data
                       and _running(rig.state) == inside.step, delivered=inside.delivered)
    cutover = _cutover(rig)
    _until(lambda: bool(rig.proxy.stalled_links()), cutover, f"the cut-over inside {case}")
    cutover.kill()
    cutover.wait(30)
    killed = time.monotonic()
    assert _running(rig.state) == inside.step
    (stalled,) = rig.proxy.stalled_links()
    assert bool(stalled.held) != inside.delivered  # the server has the command, or not
    rig.proxy.resume()
    source = redis.Redis(port=rig.source.port, socket_timeout=PAUSE_MS / 1000 + 10)
    if inside.took_effect:  # the source refuses writes
        with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
            source.set("written-after-the-kill", 1)
        acknowledged = rig.writer.stop(refused="NOREPLICAS")
    else:  # writable again (a pause ends by its own bound)
        assert source.set("written-after-the-kill", 1)
        rig.writer.wait_for(rig.writer.acknowledged + 20, timeout=PAUSE_MS / 1000 + 10)
    if case == "precheck":
        acknowledged = rig.writer.stop()  # the cut-over run again fences the source
    again = run_cli("cutover", "--state", str(rig.state), "--yes")
    where = f"an earlier cut-over was stopped during step '{inside.step}'"
    if case == "precheck":
        assert again.code == 0, again.output[-3000:]
        assert f"{where}, before promotion" in again.stderr
        outcome = "killed; the source kept serving; the cut-over run again completed"
    else:
        errors = [ln for ln in again.stderr.splitlines() if ln.startswith("kvmigrate: error:")]
        assert again.code == 4 and len(errors) == 1, again.output[-3000:]
        assert where in errors[0]
        assert run is None or run.wait(30) == 0  # the promotion stopped the sync
        if inside.took_effect:
            assert "the cut-over took effect; nothing to run again" in errors[0]
            assert not rig.target.client().exists(HEARTBEAT_KEY)  # removed by the second run
            assert "now marked completed (`kvmigrate rollback" in errors[0]
            # the fence's previous value was on record before the source took it: the
            # completed record can be rolled back, and the old source is the primary again
            back = run_cli("rollback", "--state", str(rig.state), "--yes")
            assert back.code == 0, back.output[-3000:]
            assert rig.source.client().config_get("min-replicas-to-write") == \
                {"min-replicas-to-write": "0"}
            lost = lost_writes(rig.source, acknowledged)
            outcome = ("killed; the second run: the cut-over took effect (exit 4, its record "
                       "completed); rollback completed")
        else:
            assert AFTER_PROMOTION in errors[0]
            resume = "--resume`" if run is None else "--follow --resume`"
            assert f"--state {rig.state} {resume}" in errors[0]  # the next step
            back = run_cli("rollback", "--state", str(rig.state), "--yes")  # nothing to undo
            assert back.code == 2, back.output
            assert f"was killed during step '{inside.step}' and never finished" in back.stderr
            (rig.state / "cutover.json").unlink()
            resumed = _sync_for_the_cutover(rig, inside.mode, "--resume")
            acknowledged = rig.writer.stop()
            third = run_cli("cutover", "--state", str(rig.state), "--yes")
            assert third.code == 0, third.output[-3000:]
            assert resumed is None or resumed.wait(30) == 0
            outcome = ("killed; the second run named the next step (exit 4); sync --resume "
                       "and a third run completed")
    assert json.loads((rig.state / "cutover.json").read_text())["running"] is None
    if not inside.took_effect:
        lost = lost_writes(rig.target, acknowledged)  # the target ends up primary
    _record(f"cutover SIGKILLed {inside.words}", outcome, acknowledged, lost,
            time.monotonic() - killed, inside.note, "cutover")


def test_scan_sync_sigkilled_during_the_initial_copy_then_resumed(rig: Rig) -> None:
    """Scan mode: killed while copying (its reads trickled, so the copy is under way),
    ``--resume`` scans again and copies the changes since."""
    rig.writer.wait_for(50)
    rig.proxy.trickle(64 * 1024, lambda li: not li.replication)  # the scan's reads
    run = rig.sync("--set-notify-keyspace-events", mode="scan")
    killed = _kill_in(rig, run, lambda: _ledger_phase(rig.state) == "initial-copy"
                      and rig.target.client().dbsize() > 0, "the initial copy under way")
    rig.proxy.resume()
    acknowledged = rig.writer.stop()
    source, target = rig.urls()
    resumed = run_cli("sync", "--source", source, "--target", target, "--mode", "scan",
                      "--state", str(rig.state), "--resume")
    assert resumed.code == 0, resumed.output[-3000:]
    lost = lost_writes(rig.target, acknowledged)
    assert differences(rig.source, rig.target) == []
    _record("kvmigrate SIGKILLed during the initial copy, then --resume",
            "killed; --resume scanned again and caught up", acknowledged, lost,
            time.monotonic() - killed, "REPLACE makes the copy idempotent", "scan")
