"""The servers misbehave (issue 19): the target restarts mid-stream, a replica target is
promoted by someone else, the target's password changes, the source fails over to its
replica or restarts with a new replication id, and the source kills its replicas' links
again and again. A writer records every write the source acknowledged; each test ends with
the target holding every one of them (key by key), or with the run stopped by one line
(exit 3 or 4) that ``--resume`` continues from. Each test records its row of
docs/reliability.md."""

from __future__ import annotations

import contextlib
import json
import time

import pytest
import redis

from migrate.lab.fleet import Fleet
from migrate.lab.server import ServerProcess, restart_server
from tests.faults import test_link_faults
from tests.faults.acked import AckedWriter, lost_writes
from tests.faults.test_link_faults import (
    Rig,
    _finish,
    _following,
    _record,
    _recovered,
    _status,
    _stopped,
    _sync,
    _until,
)
from tests.helpers import run_cli
from tests.sync.writes import Follow, stop, wait_applied

rig = test_link_faults.rig  # the fixture: servers, a fault proxy before the source, the writer


def _following_with_writes(rig: Rig, mode: str = "replica") -> Follow:
    """``sync --follow`` in ``mode``, once it follows and the writer has gone on a little."""
    run = rig.sync(mode=mode)
    _until(lambda: _following(run), run, "the follow phase")
    rig.writer.wait_for(rig.writer.acknowledged + 100)
    return run


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("kvmigrate: error:")]
    assert len(lines) == 1, err[-3000:]
    return lines[0]


def test_target_restarted_mid_stream_stops_and_resume_loads_again(rig: Rig) -> None:
    """The target restarts (empty: no persistence) while commands are in flight: the run
    stops (exit 4, one line) and --resume flushes it and loads it again."""
    run = _following_with_writes(rig)
    restart_server(rig.target)
    since = time.monotonic()
    _stopped(run, "the target may have applied commands it did not answer")
    acknowledged, lost, recover_s = rig.resume(since, "mode replica")
    _record("target restarted mid-stream (empty after the restart)",
            "stopped: exit 4, 'lost the connection to TARGET ... may have applied commands it "
            "did not answer'; --resume loaded again", acknowledged, lost, recover_s,
            "time includes the resumed run's full sync")


@pytest.mark.parametrize("how", ["promoted", "restarted"])
def test_replica_target_promoted_or_restarted_stops(rig: Rig, how: str) -> None:
    """Native mode: someone runs REPLICAOF NO ONE on the target mid-sync, or the target
    restarts (and comes back a primary: REPLICAOF is not in its config). The source's writes
    no longer reach it: the run stops (exit 4, one line), never reports a match; --resume
    makes it a replica again and catches up."""
    run = _following_with_writes(rig, "native")
    if how == "promoted":
        rig.target.client().execute_command("REPLICAOF", "NO", "ONE")
    else:
        restart_server(rig.target)
    since = time.monotonic()
    _err, line = _stopped(run, "is no longer a replica of")
    assert "it is a primary" in line and "--resume" in line
    acknowledged = rig.writer.stop()
    source, target = rig.urls()
    resumed = run_cli("sync", "--source", source, "--target", target, "--mode", "native",
                      "--state", str(rig.state), "--resume")
    assert resumed.code == 0, resumed.output[-3000:]
    recover_s = time.monotonic() - since
    wait_applied(rig.source, rig.target, timeout=60)
    lost = lost_writes(rig.target, acknowledged)
    fault = ("replica target promoted by someone else (REPLICAOF NO ONE)" if how == "promoted"
             else "target restarted mid-stream (comes back a primary, empty)")
    _record(fault, "stopped: exit 4, 'TARGET is no longer a replica of SOURCE: it is a "
            "primary'; --resume made it a replica again", acknowledged, lost, recover_s,
            "time includes the resumed run's full sync", "native")


def test_target_password_changed_stops_naming_authentication(rig: Rig) -> None:
    """CONFIG SET requirepass on the target, and its clients' links dropped: the run stops
    with one line naming authentication (exit 3; 4 when the replay's link met it first);
    --resume with the new password continues."""
    run = _following_with_writes(rig)
    client = rig.target.client()
    client.config_set("requirepass", "changed-secret")
    client.execute_command("CLIENT", "KILL", "TYPE", "normal")  # not this one (SKIPME)
    since = time.monotonic()
    code = run.wait(60)
    err = run.err.read_text()
    line = _one_line(err)
    # the heartbeat's link or the replay's: either way the line names authentication
    assert code in (3, 4) and "cannot authenticate to" in line, err[-3000:]
    assert f"127.0.0.1:{rig.target.port}" in line
    assert "changed-secret" not in err + run.out.read_text()
    rig.target.password = "changed-secret"
    acknowledged, lost, recover_s = rig.resume(since, "resume: ")
    _record("target's password changed mid-run (CONFIG SET requirepass, links dropped)",
            f"stopped: exit {code}, 'cannot authenticate to TARGET'; --resume "
            "with the new password continued", acknowledged, lost, recover_s,
            "time includes the resumed run")


def _failed_over(rig: Rig, lab: Fleet, mode: str) -> tuple[ServerProcess, Follow,
                                                             AckedWriter, float]:
    """``sync --follow`` in ``mode`` from a source with a replica; the replica promoted and
    the source made its replica (sentinel-style). (The new primary, the run, a writer on
    the new primary to enter, when the failover happened.)"""
    replica = lab.start("redis-7.0", extra_args=["--replicaof", "127.0.0.1",
                                                  str(rig.source.port)])
    run = _following_with_writes(rig, mode)
    before = rig.writer.stop()  # the application pauses for the failover, as sentinel's do
    offset = rig.source.client().info("replication")["master_repl_offset"]
    _until(lambda: replica.client().info("replication")["slave_repl_offset"] >= offset, run,
           "the replica caught up")
    replica.client().execute_command("REPLICAOF", "NO", "ONE")
    rig.source.client().execute_command("REPLICAOF", "127.0.0.1", replica.port)
    writer = AckedWriter(replica)
    writer.acknowledged = before  # the application goes on, on the new primary
    return replica, run, writer, time.monotonic()


@pytest.mark.parametrize("mode", ["replica", "native"])
def test_source_failover_to_its_replica_stops_then_resumes_from_the_new_primary(
        rig: Rig, lab: Fleet, mode: str) -> None:
    """A sentinel-style failover: the source's replica is promoted and the old primary made
    its replica. kvmigrate's link continues through the old primary (now a replica), whose
    refusal of the heartbeat write stops the run (exit 4, one line naming the new primary);
    ``--resume --source <the new primary>`` continues into the same state folder by partial
    resync (the new primary keeps the old replication id as master_replid2), loading nothing
    again, while the application writes on; the target holds every acknowledged write.
    Native mode: the target itself, made a replica of the new primary, resyncs partially."""
    replica, run, writer, since = _failed_over(rig, lab, mode)
    with writer:
        _err, line = _stopped(run, "is now a read-only replica (failed over?)")
        assert f"--resume --source its new primary (127.0.0.1:{replica.port})" in line
        writer.wait_for(writer.acknowledged + 100)
        resumed = _sync(replica.url, rig.target.url, rig.state, "--resume", mode=mode)
        _until(lambda: _following(resumed), resumed, "the resumed run's follow phase")
        recover_s = _recovered(rig.target, writer, resumed, since)
        acknowledged, lost, err = _finish(replica, rig.target, writer, resumed)
    assert "continues the replication of the recorded source" in err
    # the old primary and the resumed run (or the native target) resynced partially
    assert replica.client().info("stats")["sync_full"] == 0
    assert replica.client().info("stats")["sync_partial_ok"] == 2
    if mode == "replica":
        assert "partial resync accepted" in err and "nothing is loaded again" in err
        assert "loading again" not in err and "FULLRESYNC" not in err
    ledger = json.loads((rig.state / "ledger.json").read_text())
    assert ledger["run"]["source"] == replica.url
    assert ledger["moves"][0]["source"] == {"from": rig.proxy.url(), "to": replica.url}
    _record("source failed over to its replica (sentinel-style)",
            "stopped: exit 4, 'the source ... is now a read-only replica (failed over?)'; "
            "resumed from the new primary (--resume --source)", acknowledged, lost, recover_s,
            "partial resync from the new primary (its master_replid2 is the old id): "
            "nothing loaded again", mode)


def test_source_failover_in_proxy_mode_stops_then_a_run_from_the_new_primary(
        rig: Rig, lab: Fleet) -> None:
    """Proxy mode cannot resume (not even from the same source): after the failover the
    stop's hint asks for a new run from the new primary (named). The target is still the
    stopped run's read-only replica: the new run's --flush-target says so in one line
    (exit 2); once it is a primary again, the new run holds every acknowledged write."""
    replica, run, writer, since = _failed_over(rig, lab, "proxy")
    with writer:
        _err, line = _stopped(run, "is now a read-only replica (failed over?)")
        assert f"start a new run with --source its new primary (127.0.0.1:{replica.port})" \
            in line and "cannot resume" in line
        writer.wait_for(writer.acknowledged + 100)
        again = run_cli("sync", "--source", replica.url, "--target", rig.target.url, "--mode",
                        "proxy", "--state", str(rig.state.with_name("refused")),
                        "--flush-target")
        line = _one_line(again.stderr)  # the target is still the stopped run's replica
        assert again.code == 2 and "the target is a read-only replica of" in line, line
        assert "REPLICAOF NO ONE" in line, line
        rig.target.client().execute_command("REPLICAOF", "NO", "ONE")
        again = _sync(replica.url, rig.target.url, rig.state.with_name("again"),
                      "--flush-target", mode="proxy")
        _until(lambda: _following(again), again, "the new run's follow phase")
        recover_s = _recovered(rig.target, writer, again, since)
        acknowledged, lost, _err = _finish(replica, rig.target, writer, again)
    _record("source failed over to its replica (sentinel-style)",
            "stopped: exit 4, 'the source ... is now a read-only replica (failed over?)'; "
            "a new run from the new primary", acknowledged, lost, recover_s,
            "proxy mode does not resume: a new run loads in full, once the target (left the "
            "stopped run's replica) was made a primary", "proxy")


def test_resume_from_an_unrelated_source_is_refused(rig: Rig, lab: Fleet) -> None:
    """``--resume --source`` a server that does not continue the run's replication (not
    the recorded source's successor): refused in one line (exit 2) naming the recorded
    source; the state folder and the target are left as they were."""
    run = _following_with_writes(rig)
    rig.writer.stop()
    code, _out, err = stop(run)
    assert code == 0, err[-3000:]
    before = (rig.state / "ledger.json").read_text()
    other = lab.start("redis-7.0")
    keys = rig.target.client().dbsize()
    refused = run_cli("sync", "--source", other.url, "--target", rig.target.url, "--mode",
                      "replica", "--state", str(rig.state), "--resume")
    line = _one_line(refused.stderr)
    assert refused.code == 2, refused.output[-3000:]
    assert f"the run in {rig.state} read from {rig.proxy.url()}" in line
    assert "does not continue its replication" in line
    assert json.loads((rig.state / "ledger.json").read_text())["run"] == \
        json.loads(before)["run"]
    assert rig.target.client().dbsize() == keys


def test_source_restart_with_a_new_replication_id_resyncs_fully(rig: Rig) -> None:
    """The source restarts without persistence (SHUTDOWN NOSAVE): empty, with a new
    replication id. The link comes back with FULLRESYNC: the target is flushed and loaded
    again, and mirrors the source's new life key by key."""
    run = _following_with_writes(rig)
    rig.writer.stop()
    old_id = rig.source.client().info("replication")["master_replid"]
    with contextlib.suppress(redis.ConnectionError):
        rig.source.client().shutdown(nosave=True)
    restart_server(rig.source)
    since = time.monotonic()
    assert rig.source.client().info("replication")["master_replid"] != old_id
    with AckedWriter(rig.source) as writer:  # the application starts again from nothing
        writer.wait_for(100)
        _until(lambda: "(FULLRESYNC)" in run.err.read_text(), run, "the full resync")
        recover_s = _recovered(rig.target, writer, run, since)
        acknowledged, lost, err = _finish(rig.source, rig.target, writer, run)
    assert "the target will be flushed and loaded again" in err
    _record("source restarted without persistence (new replication id)", "continued",
            acknowledged, lost, recover_s, "a full resync: the target flushed and loaded "
            "again; writes counted from the restart")


def test_client_kill_type_replica_loop_resyncs_partially(rig: Rig) -> None:
    """CLIENT KILL TYPE replica on the source three times: each time the link comes back by
    partial resync, and nothing is lost."""
    run = rig.sync()
    _until(lambda: _following(run), run, "the follow phase")
    since = time.monotonic()
    for kill in range(1, 4):
        rig.writer.wait_for(rig.writer.acknowledged + 100)
        killed = rig.source.client().execute_command("CLIENT", "KILL", "TYPE", "replica")
        assert killed == 1
        _until(lambda k=kill: _status(rig.state).get("partial_resyncs") == k, run,
               f"partial resync {kill}")
    recover_s = _recovered(rig.target, rig.writer, run, since)
    acknowledged, lost, err = rig.finish(run)
    assert err.count("partial resync accepted") == 3
    assert _status(rig.state)["transfers_restarted"] == 0
    _record("CLIENT KILL TYPE replica on the source, 3 times", "continued", acknowledged,
            lost, recover_s, "each time: partial resync (PSYNC continue)")
