"""``kvmigrate lab`` refusals an operator meets: a --binary that is not a server, bad seed
options. One line `kvmigrate: error: ...`, the documented exit code, no traceback."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

from tests.helpers import Result, run_cli


def _one_line(res: Result) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("kvmigrate: error: "), res.stderr
    return lines[0]


def test_binary_that_is_not_executable(isolated_lab_dir: Path, tmp_path: Path) -> None:
    plain = tmp_path / "redis-server"
    plain.write_text("not a program\n")
    res = run_cli("lab", "up", "mine", "--binary", str(plain))
    assert res.code == 2
    assert "not an executable file" in _one_line(res)
    assert not (isolated_lab_dir / "instances" / "mine").exists()


def test_relative_binary_that_is_not_a_server(isolated_lab_dir: Path, tmp_path: Path) -> None:
    fake = tmp_path / "fake-server"
    shutil.copy("/bin/true", fake)
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x7fELF not really")
    garbage.chmod(garbage.stat().st_mode | stat.S_IXUSR)
    for name, why in (("fake-server", "does not run"), ("garbage", "Exec format error")):
        # a relative path is run as that file, not looked up on PATH
        res = run_cli("lab", "up", "mine", "--binary", f"./{name}", cwd=tmp_path)
        assert res.code == 4
        line = _one_line(res)
        assert why in line and "unexpected" not in line


def test_seed_refuses_bad_options_in_one_line(isolated_lab_dir: Path) -> None:
    up = run_cli("lab", "up", "s", "--server", "redis-7.0")
    assert up.code == 0, up.output
    try:
        profile = run_cli("lab", "seed", "s", "--profile", "huge")
        assert profile.code == 2 and "unknown profile 'huge'" in _one_line(profile)
        keys = run_cli("lab", "seed", "s", "--keys", "-3")
        assert keys.code == 2 and "--keys must be 0 or more" in _one_line(keys)
        status = run_cli("lab", "status", "--format", "json")
        assert '"keys": 0' in status.stdout  # nothing was written
    finally:
        run_cli("lab", "down", "s")


def test_server_refusing_its_arguments_points_at_a_log_that_exists(
        isolated_lab_dir: Path) -> None:
    res = run_cli("lab", "up", "bad", "--server", "redis-7.0", "--", "--bogus-directive", "1")
    assert res.code == 4
    line = _one_line(res)
    assert "exited at start" in line and "bogus-directive" in line
    log = Path(line.rsplit("(see ", 1)[1].rstrip(")"))
    assert log.exists() and "Bad directive" in log.read_text()


def test_usage_slips_are_exit_2_and_an_empty_lab_prints_no_table(
        isolated_lab_dir: Path) -> None:
    empty = run_cli("lab", "status")
    assert empty.code == 0 and empty.stdout == ""
    assert empty.stderr.strip() == ("no lab servers; start one with: kvmigrate lab up NAME "
                                    "--server SPEC")
    up = run_cli("lab", "up", "twice", "--server", "redis-7.0")
    assert up.code == 0, up.output
    port = run_cli("lab", "url", "twice").stdout.strip().rsplit(":", 1)[1]
    again = run_cli("lab", "up", "twice", "--server", "redis-7.0")
    assert again.code == 2 and "is already running on port" in _one_line(again)
    taken = run_cli("lab", "up", "other", "--server", "redis-7.0", "--port", port)
    assert taken.code == 2 and f"port {port} on 127.0.0.1 is in use" in _one_line(taken)
