"""scripts/bootstrap-os.sh waits, bounded and saying why, for another apt/dpkg process."""

from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "bootstrap-os.sh"


def _run(lock: Path, timeout: str) -> subprocess.Popen[str]:
    env = {**os.environ, "KVMIGRATE_APT_LOCKS": str(lock),
           "KVMIGRATE_APT_LOCK_TIMEOUT": timeout}
    return subprocess.Popen(["bash", str(SCRIPT), "--wait-for-apt-locks"], env=env,
                            stderr=subprocess.PIPE, text=True)


def test_a_held_lock_is_waited_for_then_given_up_with_one_clear_line(tmp_path: Path) -> None:
    lock = tmp_path / "lock-frontend"
    lock.write_text("")
    fd = os.open(lock, os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    try:
        proc = _run(lock, "1")
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 1
        assert "waiting for another apt/dpkg process" in err
        assert err.strip().splitlines()[-1].startswith(
            f"kvmigrate setup: another apt/dpkg process still holds {lock} after 1 s")

        proc = _run(lock, "60")
        assert proc.stderr is not None
        first = proc.stderr.readline()  # printed once it has seen the lock held
        assert "waiting for another apt/dpkg process" in first
    finally:
        os.close(fd)  # releases the lock
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "the package manager is free" in err


def test_a_free_lock_costs_nothing(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    lock.write_text("")
    proc = _run(lock, "5")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and err == ""
