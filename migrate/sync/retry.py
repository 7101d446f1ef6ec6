"""One retry policy for every link kvmigrate re-establishes (issue 19).

A dropped, refused or silent link is tried again with exponential backoff and jitter
(tenacity), each failed attempt noted, until it works, the run is stopped, or the fault's
deadline passes; past the deadline :class:`LinkGaveUp` stops the run (exit 4, one line) and
the state folder is what ``--resume`` continues from. The deadline runs from each fault:
the clock starts when the link fails and stops at the next success, so a link that keeps
coming back is never given up on, and one that stays down is given up on after
``deadline_s``. Each attempt's failure is named by its kind (:func:`fault_class`: dropped,
refused, silent) in the log and the status.

The deadline is per class of link (:data:`LINK_CLASSES`), ``--reconnect-deadline S`` for
all and ``CLASS=S`` for one (:func:`parse_reconnect_deadline`): the source's replication
link (kvmigrate's PSYNC link, cut mid-RDB or mid-stream) and the command links of a
``--follow`` tick (INFO, the heartbeat, to either server). The target's write link has no
retry: a dropped write link may have applied commands it did not answer, so the run stops at
once (``--resume`` loads again); it is no class here, and naming it is a usage error.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import tenacity

from migrate.errors import ConnectError, KvmError, UsageError

T = TypeVar("T")

DEFAULT_RECONNECT_DEADLINE_S = 180.0

REPLICATION = "replication"
COMMANDS = "commands"
# the links kvmigrate makes again after a fault, each with its own deadline
LINK_CLASSES = {
    REPLICATION: "the source's replication link (replica and proxy modes, each cluster "
                 "shard): cut mid-RDB or mid-stream",
    COMMANDS: "the command links of a --follow tick (INFO, the heartbeat), to either server",
}

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
    link: str = ""  # its class of link (LINK_CLASSES), named in the log and the last line

    def whose(self) -> str:
        """Words naming its deadline, ``" (the replication deadline)"``; none without a
        class."""
        return f" (the {self.link} deadline)" if self.link else ""


@dataclass(frozen=True)
class ReconnectDeadlines:
    """``--reconnect-deadline``: seconds for every class of link, and per-class overrides."""

    default_s: float = DEFAULT_RECONNECT_DEADLINE_S
    per_class: dict[str, float] = field(default_factory=dict)

    def seconds(self, link: str) -> float:
        return self.per_class.get(link, self.default_s)

    def policy(self, link: str) -> RetryPolicy:
        return RetryPolicy(self.seconds(link), link=link)


def _classes() -> str:
    return (f"classes: {', '.join(LINK_CLASSES)}; the target's write link is never retried: "
            "a dropped one stops the run")


def parse_reconnect_deadline(values: Iterable[str]) -> ReconnectDeadlines:
    """``--reconnect-deadline 180,replication=600`` (items comma-separated or the option
    repeated): a bare number is every class's deadline, ``CLASS=S`` one class's."""
    default, per_class = DEFAULT_RECONNECT_DEADLINE_S, {}
    for item in (i.strip() for value in values for i in value.split(",")):
        name, eq, number = item.rpartition("=")
        if eq and name.strip() not in LINK_CLASSES:
            raise UsageError(f"--reconnect-deadline {item}: no class of link "
                             f"{name.strip()!r}", _classes())
        try:
            seconds = float(number)
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds) or seconds < 0:
            raise UsageError(f"--reconnect-deadline {item}: {number.strip()!r} is not a "
                             "number of seconds (0 or more)", _classes())
        if eq:
            per_class[name.strip()] = seconds
        else:
            default = seconds
    return ReconnectDeadlines(default, per_class)


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
             f"next in {wait:.1f} s, giving up {policy.deadline_s:g} s after the fault"
             f"{policy.whose()}")

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
        setting = f"{policy.link}=S" if policy.link else "S"
        raise LinkGaveUp(f"{what}: still failing {policy.deadline_s:g} s after the fault"
                         f"{policy.whose()}, {last.attempt_number} attempt(s) (last: {exc})",
                         "fix the link, then run again with --resume (replica mode, if the "
                         "source failed over: --resume --source its new primary); "
                         "--reconnect-deadline "
                         f"{setting} sets how long to keep trying") from None
