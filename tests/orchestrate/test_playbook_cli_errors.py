"""`kvmigrate playbook run --report` that cannot be written is refused before any step runs."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import run_cli


def test_report_that_is_a_directory_is_refused_first(tmp_path: Path) -> None:
    res = run_cli("playbook", "run", "redis-to-valkey-live", "--var", "source=redis://127.0.0.1:1",
                  "--var", "target=redis://127.0.0.1:2", "--dry-run", "--report", str(tmp_path))
    assert res.code == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert lines == [f"kvmigrate: error: --report {tmp_path} is a directory (give a file name, "
                     "e.g. --report review.md)"]
    assert list(tmp_path.iterdir()) == []
