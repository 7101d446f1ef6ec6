"""`kvmigrate cutover` / `rollback` given a state folder where no sync has run yet, or a bad
--format: one line saying what to give, exit 2, nothing created."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import run_cli


@pytest.mark.parametrize("command", ["cutover", "rollback"])
def test_dry_run_before_any_sync_asks_for_the_urls(command: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    res = run_cli(command, "--state", str(state), "--dry-run")
    assert res.code == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("kvmigrate: error: ")
    assert "no sync has run" in lines[0] and "--source URL" in lines[0]
    assert not state.exists()


@pytest.mark.parametrize("command", ["cutover", "rollback"])
def test_unknown_format_is_refused(command: str, tmp_path: Path) -> None:
    res = run_cli(command, "--state", str(tmp_path), "--dry-run", "--format", "xml")
    assert res.code == 2
    assert "unknown --format 'xml'" in res.stderr and "table or json" in res.stderr
    assert res.stdout == ""
