"""SIGINT/SIGTERM for a long-running command: stop cleanly, and promptly even when a server
stopped answering.

The first signal asks the run to stop (``stop`` is set: phases end, the state folder is
saved, the heartbeat key and spools are removed). A server that accepts connections and
never answers would hold that wind-down for a read deadline per call, so a watchdog gives it
:data:`GRACE_S` seconds: past that, or at a second signal, the run is interrupted where it
is (``KeyboardInterrupt``: exit 130), and every clean-up step after it that still waits on a
server is cut after :data:`STEP_S`. Should the run still not have ended after
:data:`MAX_STEPS` such cuts, the process ends there (exit 130) once ``last_resort`` (the
local clean-up: spools and pidfile) ran. The ledger and the applied offset are written
atomically, so ``--resume`` continues in every case.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

from migrate.cli.console import err
from migrate.errors import ExitCode

GRACE_S = 5.0  # from the first signal to an interrupted wind-down
STEP_S = 1.0  # then, for each clean-up step still waiting on a server
MAX_STEPS = 3  # cuts before the process ends where it is


def cancel_watchdog() -> None:
    """The run has ended: no more interruptions."""
    signal.setitimer(signal.ITIMER_REAL, 0)


def install_stop_handlers(stop: threading.Event, grace_s: float = GRACE_S,
                          last_resort: Callable[[], None] | None = None) -> None:
    """Route SIGINT and SIGTERM to ``stop``, with the watchdog described above."""
    cuts: list[int] = []

    def give_up(_signum: int, _frame: FrameType | None) -> None:
        if not cuts:
            err.print(f"kvmigrate: still stopping after {grace_s:g} s (a server does not "
                      "answer): interrupted; --resume continues from the state folder",
                      markup=False)
        cuts.append(1)
        if len(cuts) > MAX_STEPS:
            if last_resort is not None:
                with contextlib.suppress(Exception):
                    last_resort()
            err.print("kvmigrate: interrupted", markup=False)
            sys.stderr.flush()
            os._exit(ExitCode.INTERRUPTED)
        signal.setitimer(signal.ITIMER_REAL, STEP_S)
        raise KeyboardInterrupt

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        err.print(f"kvmigrate: {signal.Signals(signum).name}: stopping", markup=False)
        stop.set()
        signal.signal(signal.SIGALRM, give_up)
        signal.setitimer(signal.ITIMER_REAL, grace_s)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
