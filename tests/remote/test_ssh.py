"""Remote steps through a real sshd on loopback."""

import time
from pathlib import Path

import pytest
import redis

from migrate.errors import ConnectError, ExitCode, KvmError, UsageError
from migrate.lab import install
from migrate.lab.server import free_port
from migrate.remote.ssh import RemoteHost, SshTarget
from tests.conftest import Sshd


def host(sshd: Sshd, **kw: object) -> RemoteHost:
    kw.setdefault("known_hosts", sshd.known_hosts)
    return RemoteHost(SshTarget.parse(sshd.url), key_file=sshd.key_file, **kw)  # type: ignore[arg-type]


def test_parse_and_display() -> None:
    t = SshTarget.parse("ssh://deploy@db1.example:2222/var/lib/redis/dump.rdb")
    assert (t.user, t.host, t.port, t.path) == ("deploy", "db1.example", 2222,
                                                "/var/lib/redis/dump.rdb")
    assert t.display() == "ssh://deploy@db1.example:2222/var/lib/redis/dump.rdb"
    for bad in ("ssh://host", "http://u@h", "ssh://u:pw@h"):
        with pytest.raises(UsageError):
            SshTarget.parse(bad)


def test_arguments_are_quoted(sshd: Sshd) -> None:
    tricky = ["it's", "a b", "$HOME", "; rm -rf /tmp/nothing", '"q"', "*"]
    with host(sshd) as h:
        result = h.run(["printf", "%s\\n", *tricky])
    assert result.stdout.splitlines() == tricky


def test_failed_command_is_one_clear_error(sshd: Sshd) -> None:
    with host(sshd) as h, pytest.raises(KvmError) as info:
        h.run(["ls", "/definitely/not/here"])
    assert "exit 2" in info.value.one_line() and "No such file" in info.value.one_line()


def test_fetch_and_push_files(sshd: Sshd, tmp_path: Path) -> None:
    remote_dir = tmp_path / "remote"
    remote_dir.mkdir()
    payload = bytes(range(256)) * 4096
    (remote_dir / "dump.rdb").write_bytes(payload)
    with host(sshd) as h:
        local = tmp_path / "fetched.rdb"
        assert h.fetch(str(remote_dir / "dump.rdb"), local) == len(payload)
        assert local.read_bytes() == payload
        assert h.push(local, str(remote_dir / "pushed.rdb")) == len(payload)
        assert (remote_dir / "pushed.rdb").read_bytes() == payload
        h.write_file(str(remote_dir / "valkey.conf"), b"maxmemory 1gb\n", mode=0o600)
        assert h.read_file(str(remote_dir / "valkey.conf")) == b"maxmemory 1gb\n"
        assert (remote_dir / "valkey.conf").stat().st_mode & 0o777 == 0o600
        assert not list(remote_dir.glob("*.part")) and not list(tmp_path.glob(".*.part"))
        with pytest.raises(KvmError, match="no file"):
            h.fetch(str(remote_dir / "missing.rdb"), tmp_path / "x")
        assert not (tmp_path / "x").exists()
        assert h.free_disk(str(remote_dir)) > 0
        assert h.available_memory() > 0


def test_unknown_host_key_is_refused_then_accepted_on_request(sshd: Sshd, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    with pytest.raises(ConnectError) as info, host(sshd, known_hosts=known) as h:
        h.run(["true"])
    assert info.value.exit_code == ExitCode.CONNECT
    assert "SHA256:" in info.value.one_line()
    assert "--accept-new-host-key" in info.value.one_line()
    assert not known.exists()
    with host(sshd, known_hosts=known, accept_new_host_key=True) as h:
        assert h.run(["echo", "ok"]).stdout.strip() == "ok"
    assert "ssh-ed25519" in known.read_text()
    with host(sshd, known_hosts=known) as h:  # remembered
        assert h.run(["echo", "again"]).stdout.strip() == "again"


def test_changed_host_key_is_always_refused(sshd: Sshd, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    other = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    known.write_text(f"[{sshd.host}]:{sshd.port} ssh-ed25519 {other}\n")
    with pytest.raises(ConnectError, match="CHANGED"), \
            host(sshd, known_hosts=known, accept_new_host_key=True) as h:
        h.run(["true"])


def test_dry_run_records_commands_and_connects_nowhere(tmp_path: Path) -> None:
    h = RemoteHost(SshTarget.parse(f"ssh://nobody@127.0.0.1:{free_port()}"), dry_run=True)
    h.run(["systemctl", "stop", "redis-server"])
    h.push(tmp_path / "x.rdb", "/var/lib/valkey/dump.rdb")
    h.service("start", "valkey-server")
    assert h.planned == ["systemctl stop redis-server",
                         f"sftp put {tmp_path / 'x.rdb'} /var/lib/valkey/dump.rdb",
                         "systemctl start valkey-server"]


def test_start_and_stop_a_lab_server_on_the_remote_host(
        sshd: Sshd, tmp_path: Path, installed_specs: dict[str, install.Installed]) -> None:
    port = free_port()
    argv = installed_specs["valkey-8.0"].argv("valkey-server")
    with host(sshd) as h:
        h.run([*argv, "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "yes",
               "--dir", str(tmp_path), "--pidfile", str(tmp_path / "v.pid"),
               "--logfile", str(tmp_path / "v.log"), "--save", ""])
        client = redis.Redis(port=port, socket_timeout=5)
        for _ in range(100):
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                time.sleep(0.05)
        assert client.info("server")["valkey_version"].startswith("8.0.")
        pid = h.read_file(str(tmp_path / "v.pid")).decode().strip()
        h.run(["kill", pid])
    with pytest.raises(redis.ConnectionError):
        for _ in range(100):
            client.ping()
            time.sleep(0.05)
