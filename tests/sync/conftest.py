"""The every-write corpus's coverage, printed in the summary of any run that ran the matrix
(tests/sync/test_write_matrix.py): per source version, how many of its write commands have a
case, and how many are excluded with a reason (tests/sync/write_exclusions.toml)."""

from __future__ import annotations

import pytest

from migrate.keyspec import write_commands
from tests.sync.write_corpus import coverage, exclusions


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    ran = [r for key in ("passed", "failed") for r in terminalreporter.stats.get(key, [])
           if "test_write_matrix.py" in getattr(r, "nodeid", "")]
    if not ran:
        return
    terminalreporter.section("every-write corpus coverage")
    excluded = exclusions()
    for server, writes in write_commands().items():
        covered, total, missing = coverage(server)
        skipped = sum(1 for w in writes if w in excluded)
        terminalreporter.write_line(
            f"{server}: {covered} of {total} write commands have a case, {skipped} excluded "
            f"with a reason, {len(missing)} neither")
