"""The one retry policy (migrate/sync/retry.py) on its own: backoff until the attempt works,
a deadline past which the run stops with one line, a stop that ends the waiting, and errors
that are not a link's going straight through."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from migrate.errors import ExitCode, KvmError
from migrate.sync.retry import LinkGaveUp, RetryPolicy, RetryStopped, fault_class, retry

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
