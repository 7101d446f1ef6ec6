"""The state folder on a filesystem that fills up, or that is read-only: one line naming the
path and what to do, never a traceback or "a kvmigrate bug"; a full disk stops the run with
exit 4 and ``--resume`` finishes once there is room; a read-only folder is refused (exit 2)
before anything is connected to."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from tests.faults.outcomes import Outcome, record
from tests.helpers import run_cli


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"mount {' '.join(args)}: {done.stderr.strip()}", pytrace=False)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs, mounted by the test (the suite runs as root), unmounted after it."""
    mount = tmp_path / "small"
    mount.mkdir()
    _mount("-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount))
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _closed_port() -> int:
    """A loopback port nobody listens on (a connection there would be refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_full_state_folder_stops_then_resume_finishes(lab: Fleet, small_fs: Path) -> None:
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    seed(source.endpoint, keys=60_000, profile="strings")  # its RDB spool passes 2 MiB
    state = small_fs / "state"
    started = time.monotonic()
    args = ("sync", "--source", source.url, "--target", target.url, "--mode", "replica",
            "--state", str(state))
    res = run_cli(*args)
    assert res.code == 4, res.output
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"kvmigrate: error: no space left on device writing {state}"), last
    assert "free space there or give --state another folder" in last and "--resume" in last
    assert "Traceback" not in res.stderr and "bug" not in res.stderr
    assert "replication link failed" not in res.stderr

    client = source.client()
    acknowledged = [f"ack:{i}".encode() for i in range(100)]
    for key in acknowledged:
        assert client.set(key, key)
    _mount("-o", "remount,size=64m", str(small_fs))  # room again
    again = run_cli(*args, "--resume")
    assert again.code == 0, again.output
    tclient = target.client()
    lost = sum(1 for key in acknowledged if tclient.get(key) != key)
    assert lost == 0
    assert tclient.dbsize() == client.dbsize()
    record(Outcome(fault="state folder on a full filesystem (2 MiB tmpfs)", mode="replica",
                   outcome="stopped: exit 4, no space left on device writing STATE (free "
                           "space there or give --state another folder, then run again with "
                           "--resume)", acknowledged=len(acknowledged), lost=lost,
                   recover_s=round(time.monotonic() - started, 1),
                   note="continued with --resume once the filesystem had room"))


def test_a_read_only_state_folder_is_refused_before_connecting(small_fs: Path) -> None:
    state = small_fs / "state"
    state.mkdir()
    _mount("-o", "remount,ro", str(small_fs))
    nobody = f"redis://127.0.0.1:{_closed_port()}"  # connecting would fail: it is not tried
    for where in (state, state / "new"):  # the folder itself, and one that would be made
        res = run_cli("sync", "--source", nobody, "--target", nobody, "--state", str(where))
        assert res.code == 2, res.output
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1, res.stderr
        assert lines[0].startswith(f"kvmigrate: error: the state folder {where} cannot be "
                                   "written: read-only file system"), lines[0]
        assert "make it writable or give --state another folder" in lines[0]
    record(Outcome(fault="state folder on a read-only filesystem", mode="sync (any)",
                   outcome="stopped: exit 2, the state folder STATE cannot be written: "
                           "read-only file system (before connecting)",
                   acknowledged=0, lost=0))
