"""The one place a running ``sync --follow`` and a cut-over or rollback talk, through the
files of the sync's state folder (:mod:`migrate.state.paths`).

- Who runs: :class:`RunOwner` reads the pidfile of the run that owns the folder and says
  whether it is alive (SIGTERM only as the fallback below).
- Asking it to stop: a request/acknowledge record (``sync-request.json`` written by the
  cut-over, ``sync-answer.json`` by the sync). At promotion the cut-over writes a ``stop``
  request with an id (:class:`SyncControl`); the running sync, which looks at the request's
  file every :data:`WATCH_EVERY_S` (:class:`RequestWatcher`: one ``stat``, the file read only
  when it changed), ends its follow loop, winds down as after Ctrl-C, and answers by that id:
  ``stopped``, or ``failed`` with a reason. A sync that does not answer within the cut-over's
  bound (stopped with SIGSTOP, hung) is reported in one line and gets SIGTERM instead. A
  request left over from an earlier run is never answered.
- How far it is: :func:`recorded_phase` (the ledger's phase: ``follow`` once caught up);
  ``applied.json``, the source offset the target has applied (replica and proxy modes),
  written by :class:`AppliedFile` (proxy) or the replica engine and read by
  :func:`applied_offset`.
- Scan mode's barrier, below.

Scan mode has no replication offset, so "the target has applied everything the source took
before the pause" is proven with a barrier instead:

1. the cut-over writes ``barrier-request.json`` with a token (a number that only grows);
2. the sync sends ``PING <token>`` on its keyspace-notification connection; the server answers
   it in order with the notifications, so when ``pong <token>`` arrives every notification of
   a write made before the PING has arrived too;
3. the sync copies every key marked dirty up to then (and every known stream, as consumer
   group reads notify nothing), waits for the target's replies, and writes the token to
   ``barrier-applied.json``.

Promotion asks the sync to stop applying (``{"stop": true}`` as the request) and waits for
``barrier-applied.json`` to say ``stopped``: nothing kvmigrate copies can then overwrite a
write a client makes on the new primary.

Proxy mode writes ``applied.json`` (the source offset the target has acknowledged), as replica
mode does; :class:`AppliedFile` is that file's writer.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate.state.ledger import pid_alive, write_json_atomic
from migrate.state.paths import StatePaths

STOP = "stop"
WATCH_EVERY_S = 0.05  # how often a running sync looks at the request record (one stat)
ANSWER_EVERY_S = 0.01  # how often a cut-over waiting for an answer looks at it (one stat)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class BarrierRequests:
    """The sync's side: notices requests, records what it has applied."""

    def __init__(self, root: Path):
        self.request_path = StatePaths(root).barrier_request
        self.applied_path = StatePaths(root).barrier_applied
        self._seen_mtime = 0
        self._last: int | str | None = None
        # A request left over from an earlier run is not answered.
        if self.request_path.exists():
            self._seen_mtime = self.request_path.stat().st_mtime_ns
        self.applied_path.unlink(missing_ok=True)

    def poll(self) -> int | str | None:
        """A new request since the last poll: a token, :data:`STOP`, or None."""
        try:
            mtime = self.request_path.stat().st_mtime_ns
        except OSError:
            return None
        if mtime == self._seen_mtime:
            return None
        data = _read(self.request_path)
        if not data:
            return None  # being written: next poll
        self._seen_mtime = mtime
        if data.get("stop"):
            return STOP
        token = data.get("token")
        return int(token) if isinstance(token, int) else None

    def applied(self, token: int) -> None:
        write_json_atomic(self.applied_path, {"token": token, "at": time.time()})

    def stopped(self, token: int | None) -> None:
        write_json_atomic(self.applied_path, {"token": token, "stopped": True,
                                              "at": time.time()})


class BarrierClient:
    """The cut-over's side."""

    def __init__(self, root: Path):
        self.request_path = StatePaths(root).barrier_request
        self.applied_path = StatePaths(root).barrier_applied

    def request(self) -> int:
        token = time.time_ns()
        write_json_atomic(self.request_path, {"token": token})
        return token

    def applied(self) -> int:
        token = _read(self.applied_path).get("token")
        return int(token) if isinstance(token, int) else -1

    def request_stop(self) -> None:
        write_json_atomic(self.request_path, {"stop": True, "at": time.time_ns()})

    def stopped(self) -> bool:
        return bool(_read(self.applied_path).get("stopped"))

    def stop_requested_since(self, since: float) -> bool:
        """Whether a stop of copying was asked for at or after ``since`` (time.time())."""
        data = _read(self.request_path)
        return bool(data.get("stop")) and int(data.get("at", 0)) / 1e9 >= since

    def wait(self, token: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.applied() >= token:
                return True
            time.sleep(0.005)
        return False


class AppliedFile:
    """``applied.json``: the source offset the target has applied, rewritten when it moves
    (at most every ``every_s``)."""

    def __init__(self, root: Path, every_s: float = 0.005):
        self.path = StatePaths(root).applied
        self.every_s = every_s
        self._last = (-1, 0.0)

    def update(self, offset: int, **extra: Any) -> None:
        now = time.monotonic()
        if offset == self._last[0] or now - self._last[1] < self.every_s:
            return
        write_json_atomic(self.path, {"offset": offset, **extra})
        self._last = (offset, now)


def applied_offset(root: Path) -> int:
    """The source offset the run in ``root`` says its target has applied (-1: none yet)."""
    try:
        return int(json.loads(StatePaths(root).applied.read_text())["offset"])
    except (OSError, ValueError, KeyError, TypeError):
        return -1


def recorded_phase(root: Path) -> str | None:
    """The phase the ledger of the run in ``root`` is in (None: no readable ledger yet)."""
    try:
        phase = json.loads(StatePaths(root).ledger.read_text())["status"]["phase"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return phase if isinstance(phase, str) else None


class RunOwner:
    """The run that owns a state folder, from its pidfile."""

    def __init__(self, root: Path):
        self.pidfile = StatePaths(root).pidfile

    def pid(self) -> int | None:
        try:
            text = self.pidfile.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def describe(self) -> str:
        pid = self.pid()
        return f"pid {pid}" if pid is not None else f"the pid in its {self.pidfile.name}"

    def running(self) -> bool:
        pid = self.pid()
        return pid is not None and pid_alive(pid)

    def signal_stop(self) -> None:
        """SIGTERM to the run (it ends as after Ctrl-C, its ledger saved): the fallback when
        it does not answer a stop request (:class:`SyncControl`)."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


class RequestWatcher:
    """The sync's side of the request/acknowledge record: a thread that sets ``stop`` at a
    ``stop`` request and remembers its id; :meth:`acknowledge` answers it once the run has
    wound down. Use as a context manager around the run."""

    def __init__(self, root: Path, stop: threading.Event):
        paths = StatePaths(root)
        self.request_path, self.answer_path = paths.sync_request, paths.sync_answer
        self.stop = stop
        self.stop_request: int | None = None
        self._ignored = _read(self.request_path).get("id")  # an earlier run's: not answered
        self._seen = _mtime(self.request_path)
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="kvmigrate-requests",
                                        daemon=True)

    def __enter__(self) -> RequestWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join(1.0)

    def _loop(self) -> None:
        while not self._done.wait(WATCH_EVERY_S):
            self.poll()

    def poll(self) -> None:
        """Take a new request, if the record changed since the last look."""
        with self._lock:  # the watcher's thread, and the run once following has ended
            self._take()

    def _take(self) -> None:
        mtime = _mtime(self.request_path)
        if mtime is None or mtime == self._seen:
            return
        data = _read(self.request_path)
        request_id = data.get("id")
        if not isinstance(request_id, int) or request_id == self._ignored:
            return  # being written (next look), or already taken
        self._seen, self._ignored = mtime, request_id
        if data.get("kind") == STOP:
            if self.stop_request is None:
                self.stop_request = request_id
            self.stop.set()
        else:
            self._answer(request_id, "failed",
                         reason=f"unknown request {str(data.get('kind'))[:40]!r}")

    def acknowledge(self, failure: BaseException | None) -> None:
        """The run has wound down: answer the stop request, if there was one (also one made
        in the last instant). ``failure``: what ended the run, if it did not end cleanly."""
        self.poll()
        if self.stop_request is None:
            return
        if failure is None or isinstance(failure, KeyboardInterrupt):
            self._answer(self.stop_request, "stopped")
        else:
            reason = getattr(failure, "message", None) or str(failure) or type(failure).__name__
            self._answer(self.stop_request, "failed", reason=str(reason).splitlines()[0])

    def _answer(self, request_id: int, status: str, **detail: Any) -> None:
        write_json_atomic(self.answer_path, {"id": request_id, "status": status,
                                             "pid": os.getpid(), "at": time.time(), **detail})


@dataclass
class StopOutcome:
    """How a running sync's stop went: ``answer`` is its acknowledgement (None: none within
    the bound); ``note``, one line for the operator when something is worth saying."""

    answer: dict[str, Any] | None
    detail: dict[str, Any] = field(default_factory=dict)
    note: str | None = None


class SyncControl:
    """The cut-over's side of the request/acknowledge record."""

    def __init__(self, root: Path):
        paths = StatePaths(root)
        self.request_path, self.answer_path = paths.sync_request, paths.sync_answer
        self.owner = RunOwner(root)

    def request(self, kind: str) -> int:
        request_id = time.time_ns()
        write_json_atomic(self.request_path, {"id": request_id, "kind": kind,
                                              "at": time.time()})
        return request_id

    def requested_since(self, kind: str, since: float) -> bool:
        """Whether a ``kind`` request was made at or after ``since`` (time.time())."""
        data = _read(self.request_path)
        return data.get("kind") == kind and float(data.get("at", 0)) >= since

    def answer(self, request_id: int) -> dict[str, Any] | None:
        data = _read(self.answer_path)
        return data if data.get("id") == request_id else None

    def wait(self, request_id: int, timeout: float) -> dict[str, Any] | None:
        """The answer to ``request_id``, or None when none came within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        seen: int | None = None
        while True:
            mtime = _mtime(self.answer_path)
            if mtime is not None and mtime != seen:
                seen = mtime
                answer = self.answer(request_id)
                if answer is not None:
                    return answer
            if time.monotonic() >= deadline:
                return None
            time.sleep(ANSWER_EVERY_S)

    def stop(self, request_id: int, timeout: float, what: str) -> StopOutcome:
        """Wait for the answer to the stop request ``request_id``; without one within
        ``timeout`` s, SIGTERM to the run (the fallback), said in ``note``."""
        answer = self.wait(request_id, timeout)
        if answer is not None:
            detail = {"request": request_id, "acknowledged": True, "status": answer.get("status")}
            note = None
            if answer.get("status") != "stopped":
                detail["reason"] = answer.get("reason")
                note = f"warning: {what} answered the stop request: {answer.get('status')} " \
                       f"({answer.get('reason')})"
            return StopOutcome(answer, detail, note)
        if not self.owner.running():
            return StopOutcome(None, {"request": request_id, "acknowledged": False,
                                      "ended": True},
                               f"{what} ended without answering the stop request")
        pid_text = self.owner.describe()
        self.owner.signal_stop()
        return StopOutcome(None, {"request": request_id, "acknowledged": False,
                                  "fallback": "SIGTERM"},
                           f"warning: {what} did not acknowledge the stop request within "
                           f"{timeout:g} s: sent SIGTERM to {pid_text}")
