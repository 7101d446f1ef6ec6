"""`kvmigrate copy --to-rdb` with a destination that cannot be written: one line, exit 2,
refused before the source is read, nothing left behind."""

from __future__ import annotations

from pathlib import Path

from migrate.lab.fleet import Fleet
from tests.copy.conftest import Source
from tests.helpers import run_cli


def _one_error_line(stderr: str) -> str:
    errors = [ln for ln in stderr.splitlines() if ln.startswith("kvmigrate: error:")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    return errors[0]


def test_to_rdb_in_missing_directory_is_a_usage_error(redis8_source: Source,
                                                      tmp_path: Path) -> None:
    out = tmp_path / "no-such-dir" / "out.rdb"
    res = run_cli("copy", "--from-rdb", str(redis8_source.rdb), "--to-rdb", str(out),
                  "--to", "valkey")
    assert res.code == 2, res.stderr
    line = _one_error_line(res.stderr)
    assert "no such directory" in line and "--to-rdb" in line
    assert "validating" not in res.stderr  # refused before reading the source
    assert not (tmp_path / "no-such-dir").exists()


def test_to_rdb_that_is_a_directory_is_a_usage_error(redis8_source: Source,
                                                     tmp_path: Path) -> None:
    res = run_cli("copy", "--from-rdb", str(redis8_source.rdb), "--to-rdb", str(tmp_path),
                  "--to", "valkey")
    assert res.code == 2, res.stderr
    assert "is a directory" in _one_error_line(res.stderr)
    assert list(tmp_path.iterdir()) == []


def test_existing_to_rdb_refused_before_reading(redis8_source: Source, tmp_path: Path) -> None:
    out = tmp_path / "x.rdb"
    out.write_bytes(b"keep")
    res = run_cli("copy", "--from-rdb", str(redis8_source.rdb), "--to-rdb", str(out),
                  "--to", "valkey")
    assert res.code == 2 and "--overwrite" in _one_error_line(res.stderr)
    assert "validating" not in res.stderr
    assert out.read_bytes() == b"keep"


def test_unreachable_target_fails_before_validation(redis8_source: Source) -> None:
    from migrate.lab.server import free_port

    res = run_cli("copy", "--from-rdb", str(redis8_source.rdb), "--target",
                  f"redis://:tgt-pw@127.0.0.1:{free_port()}")
    assert res.code == 3
    assert "cannot connect" in _one_error_line(res.stderr)
    assert "validating" not in res.stderr and "tgt-pw" not in res.output


def test_unreachable_target_fails_before_the_snapshot(redis8_source: Source) -> None:
    from migrate.lab.server import free_port

    res = run_cli("copy", "--from-server", redis8_source.server.url, "--target",
                  f"redis://127.0.0.1:{free_port()}")
    assert res.code == 3
    assert "cannot connect" in _one_error_line(res.stderr)
    assert "taking a snapshot" not in res.stderr


def test_busy_target_is_refused_before_validation(lab: Fleet, redis8_source: Source) -> None:
    target = lab.start("valkey-9")
    target.client(3).set("keep-me", "1")
    res = run_cli("copy", "--from-rdb", str(redis8_source.rdb), "--target", target.url)
    assert res.code == 2
    line = _one_error_line(res.stderr)
    assert "not empty (db3: 1 keys)" in line and "--flush-target" in line
    assert "validating" not in res.stderr
    assert target.client(3).get("keep-me") == b"1"


def test_dry_run_on_a_busy_target_shows_the_plan_and_says_it(lab: Fleet,
                                                              redis8_source: Source) -> None:
    """A change-review dry run before the window: the plan is shown, the refusal said."""
    target = lab.start("valkey-9")
    target.client(3).set("keep-me", "1")
    res = run_cli("copy", "--from-rdb", str(redis8_source.rdb), "--target", target.url,
                  "--dry-run")
    assert res.code == 0, res.output
    assert "would write" in res.stdout
    assert "not empty (db3: 1 keys): the real copy is refused unless --flush-target" in \
        res.stdout
    assert target.client(3).get("keep-me") == b"1" and target.client(0).dbsize() == 0


def test_busy_target_is_refused_before_the_snapshot(lab: Fleet, redis8_source: Source) -> None:
    target = lab.start("valkey-9")
    target.client(0).set("keep-me", "1")
    res = run_cli("copy", "--from-server", redis8_source.server.url, "--target", target.url)
    assert res.code == 2
    assert "not empty (db0: 1 keys)" in _one_error_line(res.stderr)
    assert "taking a snapshot" not in res.stderr
    assert target.client(0).dbsize() == 1
