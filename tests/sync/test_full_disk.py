"""A state folder on a filesystem that fills up: one line naming the file and what to do,
exit 4, never "a kvmigrate bug"."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from tests.helpers import run_cli


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 96 KiB tmpfs, mounted by the test (the suite runs as root, as make test does)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"cannot mount a small tmpfs for this test: {done.stderr.strip()}",
                    pytrace=False)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_state_folder_is_one_clear_line(lab: Fleet, small_filesystem: Path) -> None:
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    seed(source.endpoint, keys=3000, profile="strings")
    res = run_cli("sync", "--source", source.url, "--target", target.url, "--mode",
                  "replica", "--state", str(small_filesystem / "state"))
    assert res.code == 4, res.output
    last = res.stderr.strip().splitlines()[-1]
    assert "no space left on device" in last.lower(), res.stderr
    assert "bug" not in last and "unexpected" not in last
