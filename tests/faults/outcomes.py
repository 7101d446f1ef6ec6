"""What each fault test saw, for docs/reliability.md (issue 19).

Every fault test calls :func:`record` once with what happened: the fault, the mode, how the
run ended, how many writes the source acknowledged while the fault was going on and how many
of those the target lacks at the end (0, or the test fails), and how long recovery took.
When ``KVMIGRATE_FAULTS_OUT`` names a file, the rows are appended to it as JSON lines (one
run of tests/faults writes the table's data; scripts/gen_reliability.py renders it); without
it, recording does nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Outcome:
    fault: str  # what was done, in a few words: "link cut mid-RDB (source side)"
    mode: str  # the sync mode (or the command: "verify", "cutover")
    outcome: str  # "continued" or "stopped: exit N, <the one line>"
    acknowledged: int  # writes the source acknowledged during the test
    lost: int  # acknowledged writes the target lacks at the end
    recover_s: float | None = None  # fault to caught-up (None: the run stopped)
    note: str = ""


def record(outcome: Outcome) -> None:
    path = os.environ.get("KVMIGRATE_FAULTS_OUT")
    if not path:
        return
    line = json.dumps(asdict(outcome), sort_keys=True) + "\n"
    with open(path, "a", encoding="utf-8") as out:
        fcntl.flock(out, fcntl.LOCK_EX)  # the pytest -n workers append to one file
        out.write(line)
