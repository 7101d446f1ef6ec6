"""docs/reliability.md is not stale: every fault a test of tests/faults records has its row in
checks/data/reliability.json (the doc itself is checked against that data by
tests/test_docs.py), and every row says nothing was lost."""

from __future__ import annotations

import ast
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FAULT_TESTS = REPO / "tests" / "faults"  # run by scripts/gen_reliability.py (not this file)
DATA = REPO / "checks" / "data" / "reliability.json"
RECORDERS = {"Outcome", "_record"}  # the row itself, or a test module's helper that makes it


def recorded_faults() -> set[str]:
    """The fault named by each ``Outcome(...)`` / ``_record(...)`` call of the fault tests
    (as a literal string: the first argument or ``fault=``)."""
    faults = set()
    for path in sorted(FAULT_TESTS.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) \
                    or node.func.id not in RECORDERS:
                continue
            args = [*node.args[:1], *(k.value for k in node.keywords if k.arg == "fault")]
            faults |= {a.value for a in args
                       if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    return faults


def test_every_recorded_fault_has_its_row() -> None:
    rows = json.loads(DATA.read_text())["rows"]
    faults = recorded_faults()
    assert len(faults) >= 6
    missing = sorted(faults - {r["fault"] for r in rows})
    assert missing == [], "run scripts/gen_reliability.py and commit the result"


def test_no_row_lost_a_write() -> None:
    rows = json.loads(DATA.read_text())["rows"]
    assert rows and [r["fault"] for r in rows if r["lost"]] == []
