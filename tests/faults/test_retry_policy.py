"""The one retry policy (migrate/sync/retry.py): backoff until the attempt works, a deadline
past which the run stops with one line, a stop that ends the waiting, errors that are not a
link's going straight through; and its deadline per class of link (``--reconnect-deadline
S,CLASS=S``), each class's the one that ends a real run whose link of that class stays down
(the fault proxy before the source), a bad value a usage error."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from migrate.errors import ExitCode, KvmError, UsageError
from migrate.sync.retry import (
    COMMANDS,
    DEFAULT_RECONNECT_DEADLINE_S,
    REPLICATION,
    LinkGaveUp,
    RetryPolicy,
    RetryStopped,
    fault_class,
    parse_reconnect_deadline,
    retry,
)
from tests.faults import test_link_faults
from tests.faults.test_link_faults import Rig, _record, _status, _stopped, _until
from tests.helpers import run_cli

rig = test_link_faults.rig  # the servers, the fault proxy before the source, the writer

FAST = RetryPolicy(deadline_s=0.5, first_wait_s=0.01, max_wait_s=0.05, jitter_s=0.01)


def _failing(times: int, exc: BaseException) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise exc
        return "linked"
    return calls, attempt


def test_retries_until_the_link_is_back_noting_and_counting_each_attempt() -> None:
    calls, attempt = _failing(3, ConnectionResetError("Connection reset by peer"))
    notes: list[str] = []
    counted: list[int] = []
    got = retry(attempt, policy=FAST, what="reconnecting", stop=threading.Event(),
                note=notes.append, counted=lambda n, _exc: counted.append(n))
    assert got == "linked" and len(calls) == 4
    assert counted == [1, 2, 3] and len(notes) == 3
    assert "attempt 1 failed (link dropped: Connection reset by peer)" in notes[0]


def test_past_the_deadline_the_run_stops_with_one_line() -> None:
    _calls, attempt = _failing(10**6, ConnectionRefusedError("Connection refused"))
    with pytest.raises(LinkGaveUp) as err:
        retry(attempt, policy=FAST, what="reconnecting to the source", stop=threading.Event(),
              note=lambda _m: None, counted=lambda _n, _e: None)
    assert err.value.exit_code == ExitCode.FAILED
    line = err.value.one_line()
    assert "\n" not in line and "still failing 0.5 s after the fault" in line
    assert "--resume" in line and "Connection refused" in line


def test_a_stopped_run_stops_waiting() -> None:
    stop = threading.Event()
    stop.set()
    _calls, attempt = _failing(10**6, ConnectionResetError("reset"))
    with pytest.raises(RetryStopped):
        retry(attempt, policy=RetryPolicy(deadline_s=60), what="x", stop=stop,
              note=lambda _m: None, counted=lambda _n, _e: None)


def test_other_errors_are_not_retried() -> None:
    calls, attempt = _failing(1, KvmError("the source refused PSYNC: -ERR no"))
    with pytest.raises(KvmError, match="refused PSYNC"):
        retry(attempt, policy=FAST, what="x", stop=threading.Event(),
              note=lambda _m: None, counted=lambda _n, _e: None)
    assert len(calls) == 1


@pytest.mark.parametrize(("exc", "kind"), [
    (TimeoutError("timed out"), "silent link"),
    (ConnectionRefusedError("Connection refused"), "connection refused"),
    (ConnectionResetError("Connection reset by peer"), "link dropped")])
def test_fault_classes(exc: BaseException, kind: str) -> None:
    assert fault_class(exc) == kind


# --- a deadline per class of link ---------------------------------------------------------------
def test_a_class_overrides_the_deadline_of_every_class() -> None:
    deadlines = parse_reconnect_deadline(["600,commands=30"])
    assert deadlines.seconds(REPLICATION) == 600 and deadlines.seconds(COMMANDS) == 30
    repeated = parse_reconnect_deadline(["replication=5", "90"])  # the option given twice
    assert repeated.seconds(REPLICATION) == 5 and repeated.seconds(COMMANDS) == 90
    assert parse_reconnect_deadline([]).seconds(COMMANDS) == DEFAULT_RECONNECT_DEADLINE_S
    policy = repeated.policy(REPLICATION)
    assert policy.deadline_s == 5 and policy.link == REPLICATION


@pytest.mark.parametrize("bad", ["target=60", "source=300", "replication=abc", "-5",
                                 "commands=", "180,", "nan"])
def test_a_bad_deadline_is_a_usage_error_naming_the_classes(bad: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_reconnect_deadline([bad])
    assert "replication, commands" in (raised.value.hint or "")
    # the command line: exit 2 and one line, before any server is tried (none listens here)
    result = run_cli("sync", "--source", "redis://127.0.0.1:1", "--target",
                     "redis://127.0.0.1:2", "--reconnect-deadline", bad)
    lines = result.stderr.strip().splitlines()
    assert result.code == 2 and len(lines) == 1, result.output
    assert lines[0].startswith("kvmigrate: error: --reconnect-deadline ")
    assert "classes: replication, commands" in lines[0]


def _resumed(rig: Rig, cut_at: float, fault: str, words: str, note: str) -> None:
    """The link let through again, ``sync --resume`` continues; the row (``words``: what
    the run's last line said)."""
    rig.proxy.resume()
    acknowledged, lost, recover_s = rig.resume(cut_at, "partial resync accepted")
    _record(fault, f"stopped: exit 4, '{words}'; --resume continued", acknowledged, lost,
            recover_s, note)


def test_the_replication_deadline_ends_the_run_not_the_default(rig: Rig) -> None:
    """``600,replication=2``: the replication link, kept down, stops the run after 2 s (the
    default of 600 would keep trying); the line names the class; --resume continues."""
    run = rig.sync("--reconnect-deadline", "600,replication=2")
    _until(lambda: "following the source" in run.err.read_text(), run, "the follow phase")
    rig.proxy.refuse_replication()
    assert rig.proxy.cut(lambda li: li.replication) == 1
    cut_at = time.monotonic()
    err, line = _stopped(run, "still failing 2 s after the fault (the replication deadline)")
    assert "--reconnect-deadline replication=S" in line
    assert "giving up 2 s after the fault (the replication deadline)" in err  # each attempt
    assert _status(rig.state)["reconnect_attempts_failed"] >= 1
    _resumed(rig, cut_at, "replication link down past its class's deadline "
             "(600,replication=2)", "still failing 2 s after the fault (the replication "
             "deadline)", "time includes the deadline and the resumed run")


def test_the_commands_deadline_ends_the_run_not_the_default(rig: Rig) -> None:
    """``600,commands=2``: the follow tick's command links to the source cut and no new one
    let through (the replication link stays up) stop the run after 2 s, naming the class."""
    run = rig.sync("--reconnect-deadline", "600,commands=2")
    _until(lambda: "following the source" in run.err.read_text(), run, "the follow phase")
    rig.proxy.refuse_connections()
    assert rig.proxy.cut(lambda li: not li.replication) >= 1
    cut_at = time.monotonic()
    err, line = _stopped(run, "following (a server's command link): still failing 2 s after "
                              "the fault (the commands deadline)")
    assert "--reconnect-deadline commands=S" in line
    # (an attempt can outlast the deadline by itself: redis-py retries a command's link)
    assert "attempt(s) (last: " in line and "run again with --resume" in err
    status = _status(rig.state)
    assert status["command_link_attempts_failed"] >= 1
    assert status["reconnects"] == 0  # the replication link was never dropped
    assert rig.proxy.refused >= 1
    _resumed(rig, cut_at, "command links down past their class's deadline (600,commands=2)",
             "following (a server's command link): still failing 2 s after the fault (the "
             "commands deadline)", "the replication link stayed up; time includes the "
             "deadline and the resumed run")
