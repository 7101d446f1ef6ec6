"""The one place a running ``sync --follow`` and a cut-over or rollback talk, through the
files of the sync's state folder (:mod:`migrate.state.paths`).

- Who runs: :class:`RunOwner` reads the pidfile of the run that owns the folder, says
  whether it is alive, and stops it (SIGTERM) at promotion.
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
import time
from pathlib import Path
from typing import Any

from migrate.state.ledger import pid_alive, write_json_atomic
from migrate.state.paths import StatePaths

STOP = "stop"


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

    def stop(self) -> None:
        """SIGTERM to the run (it ends as after Ctrl-C, its ledger saved)."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
