"""One retry policy for every link kvmigrate re-establishes (issue 19).

A dropped, refused or silent link is tried again with exponential backoff and jitter
(tenacity), each failed attempt noted, until it works, the run is stopped, or the fault's
deadline passes; past the deadline :class:`LinkGaveUp` stops the run (exit 4, one line) and
the state folder is what ``--resume`` continues from. The deadline runs from each fault:
the clock starts when the link fails and stops at the next success, so a link that keeps
coming back is never given up on, and one that stays down is given up on after
``deadline_s``. Each attempt's failure is named by its class (:func:`fault_class`: dropped,
refused, silent) in the log and the status; one deadline serves all three today.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

from migrate.errors import ConnectError, KvmError

T = TypeVar("T")

DEFAULT_RECONNECT_DEADLINE_S = 180.0

# what a link's failure looks like: the socket's own errors, or protocol.connect's words for
# them (refused, reset, closed, did not answer within the deadline)
LINK_ERRORS: tuple[type[BaseException], ...] = (OSError, ConnectionError, ConnectError)


class LinkGaveUp(KvmError):
    """A link stayed down past its deadline (exit 4; ``--resume`` continues)."""


class RetryStopped(Exception):
    """The run was stopped (SIGINT/SIGTERM, the end of the run) while retrying."""


@dataclass(frozen=True)
class RetryPolicy:
    deadline_s: float = DEFAULT_RECONNECT_DEADLINE_S  # from the fault to giving up
    first_wait_s: float = 0.2  # the first wait; each one after doubles ...
    max_wait_s: float = 5.0  # ... up to this
    jitter_s: float = 0.2  # plus up to this much, at random (links cut together spread out)


def fault_class(exc: BaseException) -> str:
    """What kind of fault ``exc`` is, in a few words (for the log and the status)."""
    text = str(exc).lower()
    if isinstance(exc, TimeoutError) or "did not answer" in text or "sent nothing" in text:
        return "silent link"
    if isinstance(exc, ConnectionRefusedError) or "refused" in text:
        return "connection refused"
    return "link dropped"


def retry(attempt: Callable[[], T], *, policy: RetryPolicy, what: str, stop: threading.Event,
          note: Callable[[str], None], counted: Callable[[int, BaseException], None],
          on: tuple[type[BaseException], ...] = LINK_ERRORS) -> T:
    """``attempt()`` until it returns, retrying on ``on`` (:data:`LINK_ERRORS`).

    ``counted(n, exc)`` is told of each failed attempt (n from 1), ``note`` gets one line
    for each. Raises :class:`LinkGaveUp` past the deadline, :class:`RetryStopped` once
    ``stop`` is set; any other error of ``attempt`` goes through as it is."""

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        assert exc is not None
        counted(state.attempt_number, exc)
        wait = state.next_action.sleep if state.next_action else 0.0
        note(f"{what}: attempt {state.attempt_number} failed ({fault_class(exc)}: {exc}); "
             f"next in {wait:.1f} s, giving up {policy.deadline_s:g} s after the fault")

    def sleep(seconds: float) -> None:
        stop.wait(seconds)  # a stopped run does not wait out the backoff

    retrying = tenacity.Retrying(
        stop=tenacity.stop_before_delay(policy.deadline_s) | tenacity.stop_when_event_set(stop),
        wait=tenacity.wait_exponential(multiplier=policy.first_wait_s, max=policy.max_wait_s)
        + tenacity.wait_random(0, policy.jitter_s),
        retry=tenacity.retry_if_exception_type(on),
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=False)
    try:
        return retrying(attempt)
    except tenacity.RetryError as err:
        if stop.is_set():
            raise RetryStopped() from None
        last = err.last_attempt
        exc = last.exception()
        counted(last.attempt_number, exc if exc is not None else err)
        raise LinkGaveUp(f"{what}: still failing {policy.deadline_s:g} s after the fault, "
                         f"{last.attempt_number} attempt(s) (last: {exc})",
                         "fix the link, then run again with --resume; --reconnect-deadline "
                         "sets how long to keep trying") from None
