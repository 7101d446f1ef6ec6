"""`kvmigrate convert-config -o` into a directory that does not exist: a usage error (exit 2),
one line, nothing written."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import run_cli


def test_output_in_missing_directory_is_exit_2(tmp_path: Path) -> None:
    conf = tmp_path / "redis.conf"
    conf.write_text("port 6379\nrequirepass hunter2\n")
    out = tmp_path / "missing" / "valkey.conf"
    res = run_cli("convert-config", str(conf), "--to", "valkey", "-o", str(out))
    assert res.code == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"kvmigrate: error: cannot write {out}")
    assert "hunter2" not in res.output
    assert not out.parent.exists()
