"""`kvmigrate copy --from-server URL --via-ssh ssh://...`: BGSAVE, then SFTP with host keys
checked (a real sshd on loopback)."""

from __future__ import annotations

import json
from pathlib import Path

from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from tests.conftest import Sshd
from tests.helpers import run_cli
from tests.rdb.snapshot import differences, server_snapshot


def _ssh_url(sshd: Sshd, path: Path) -> str:
    return f"ssh://{sshd.user}@{sshd.host}:{sshd.port}{path}"


def test_copy_via_ssh(lab: Fleet, sshd: Sshd) -> None:
    source = lab.start("redis-8", password="pw-ssh-1")
    seed(source.endpoint, keys=700, seed_value=9)
    target = lab.start("valkey-9")
    res = run_cli("copy", "--from-server", source.url, "--via-ssh",
                  _ssh_url(sshd, Path(source.directory) / "dump.rdb"),
                  "--ssh-key", str(sshd.key_file), "--known-hosts", str(sshd.known_hosts),
                  "--target", target.url, "--format", "json")
    assert res.code == 0, res.stderr
    assert json.loads(res.stdout)["keys"] == 700
    assert "pw-ssh-1" not in res.stdout + res.stderr
    assert differences(server_snapshot(source.endpoint), server_snapshot(target.endpoint)) == []


def test_unknown_host_key_is_refused(lab: Fleet, sshd: Sshd, tmp_path: Path) -> None:
    source = lab.start("redis-8")
    source.client(0).set("k", "v")
    target = lab.start("valkey-9")
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    res = run_cli("copy", "--from-server", source.url, "--via-ssh",
                  _ssh_url(sshd, Path(source.directory) / "dump.rdb"),
                  "--ssh-key", str(sshd.key_file), "--known-hosts", str(empty),
                  "--target", target.url)
    assert res.code == 3, res.stderr
    assert target.client(0).dbsize() == 0
