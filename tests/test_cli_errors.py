"""Every error is one line `kvmigrate: error: ...` with its exit code: argument-parser
errors, a server that wants a password, and passwords never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrate.lab.fleet import Fleet
from tests.helpers import Result, run_cli


def _one_error_line(res: Result) -> str:
    assert "Traceback" not in res.stderr and "╭" not in res.stderr, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("kvmigrate: error: ")
    return lines[0]


@pytest.mark.parametrize(("args", "words"), [
    (["preflight", "--source", "redis://h:1", "--to", "foo"], ["'--to'", "'foo'", "valkey"]),
    (["preflight", "--to", "valkey"], ["Missing option '--source'"]),
    # was three lines: "Choose from:\n valkey,\n dragonfly"
    (["preflight", "--source", "redis://h:1"],
     ["Missing option '--to'", "Choose from: valkey, dragonfly"]),
    (["rdb", "inspect", "x.rdb", "--format", "xml"], ["'--format'", "'xml'"]),
    (["copy", "--from-rdb", "x.rdb", "--target", "redis://h:1", "--to", "mysql"], ["'--to'"]),
    (["frobnicate"], ["frobnicate"]),
    (["lab", "down", "a", "b"], ["unexpected extra argument"]),
])
def test_usage_errors_are_one_line_with_exit_2(args: list[str], words: list[str]) -> None:
    res = run_cli(*args)
    assert res.code == 2
    line = _one_error_line(res)
    for word in words:
        assert word in line
    assert "--help" in line  # says where to look next
    assert "Value error" not in line


@pytest.mark.parametrize(("args", "words"), [
    (["rdb", "inspect", "x.rdb", "--target-version", "banana"], ["needs --to", "--to valkey"]),
    # nothing listens on port 1: the usage error comes before any connection
    (["sync", "--source", "redis://127.0.0.1:1", "--target", "redis://127.0.0.1:1", "--to",
      "banana"], ["unknown --to 'banana'", "valkey, dragonfly, redis"]),
    (["rdb", "inspect", "x.rdb", "--to", "valkey", "--target-version", "banana"],
     ["'banana'", "8.0.1, 8.1.1, 9.1.2"]),
])
def test_a_bad_target_is_refused_before_anything_is_read(args: list[str],
                                                                   words: list[str]) -> None:
    """Was: --target-version without --to ignored (exit 0); x.rdb does not exist, so the
    refusal comes before the file is opened."""
    res = run_cli(*args)
    assert res.code == 2
    line = _one_error_line(res)
    assert all(word in line for word in words), line


def test_secret_in_a_rejected_option_value_is_masked() -> None:
    res = run_cli("preflight", "--source", "redis://:hunter2@127.0.0.1:1", "--to", "vk",
                  "--target", "redis://:hunter3@127.0.0.1:1")
    assert res.code == 2
    _one_error_line(res)
    assert "hunter" not in res.output


def test_bare_group_still_shows_its_help() -> None:
    res = run_cli("rdb")
    assert res.code == 2
    assert "inspect" in res.output and "kvmigrate: error" not in res.output


def test_missing_password_says_to_put_it_in_the_url(lab: Fleet) -> None:
    server = lab.start("redis-8", password="s3cret-pw")
    res = run_cli("preflight", "--source", f"redis://127.0.0.1:{server.port}", "--to", "valkey")
    assert res.code == 3
    line = _one_error_line(res)
    assert "requires a password" in line and "redis://:PASSWORD@host:port" in line
    wrong = run_cli("preflight", "--source", f"redis://:not-it@127.0.0.1:{server.port}",
                    "--to", "valkey")
    assert wrong.code == 3
    assert "check the user and password" in _one_error_line(wrong)
    assert "not-it" not in wrong.output and "s3cret-pw" not in wrong.output


def test_preflight_takes_short_o_like_convert_config(lab: Fleet, tmp_path: Path) -> None:
    server = lab.start("redis-7.0")
    report = tmp_path / "review.md"
    res = run_cli("preflight", "--source", server.url, "--to", "valkey", "--format", "markdown",
                  "-o", str(report))
    assert res.code == 0, res.stderr
    assert res.stdout == "" and report.read_text().startswith("# Preflight")
