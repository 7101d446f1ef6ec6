"""An SSH host that does not answer: one clear line with what to check, exit 3."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrate.errors import ConnectError, ExitCode
from migrate.lab.fleet import Fleet
from migrate.lab.server import free_port
from migrate.remote.ssh import RemoteHost, SshTarget
from tests.helpers import run_cli


def test_closed_port_says_what_to_check() -> None:
    port = free_port()
    h = RemoteHost(SshTarget.parse(f"ssh://ops@127.0.0.1:{port}"), timeout=5)
    with pytest.raises(ConnectError) as info:
        h.run(["true"])
    line = info.value.one_line()
    assert info.value.exit_code == ExitCode.CONNECT
    assert f"cannot connect to ssh://ops@127.0.0.1:{port}" in line
    assert "[Errno None]" not in line and "sshd is running" in line


def test_copy_via_ssh_to_a_closed_port_is_one_line(lab: Fleet, tmp_path: Path) -> None:
    source = lab.start("redis-7.0", password="via-ssh-pw")
    port = free_port()
    res = run_cli("copy", "--from-server", source.url, "--via-ssh",
                  f"ssh://ops@127.0.0.1:{port}/var/lib/redis/dump.rdb",
                  "--to-rdb", str(tmp_path / "x.rdb"), "--to", "valkey", timeout=120)
    assert res.code == 3
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("kvmigrate: error:")]
    assert len(errors) == 1 and "sshd is running" in errors[0]
    assert "via-ssh-pw" not in res.output and "Traceback" not in res.stderr
    assert not (tmp_path / "x.rdb").exists()
