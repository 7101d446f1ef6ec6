"""The loopback sshd that remote-step tests use is real and checks host keys."""

import paramiko
import pytest

from tests.conftest import Sshd


def _client(sshd: Sshd, known_hosts: str | None) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    if known_hosts:
        client.load_host_keys(known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(sshd.host, port=sshd.port, username=sshd.user,
                   key_filename=str(sshd.key_file), look_for_keys=False, allow_agent=False,
                   timeout=10)
    return client


def test_key_login_runs_a_command(sshd: Sshd) -> None:
    client = _client(sshd, str(sshd.known_hosts))
    try:
        _, stdout, _ = client.exec_command("echo kvmigrate-$((40 + 2))")
        assert stdout.read().decode().strip() == "kvmigrate-42"
        sftp = client.open_sftp()
        assert sftp.stat("/").st_mode is not None
    finally:
        client.close()


def test_unknown_host_key_is_refused(sshd: Sshd) -> None:
    with pytest.raises(paramiko.SSHException):
        _client(sshd, None)
