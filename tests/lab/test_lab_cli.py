"""``kvmigrate lab`` as an operator uses it: up, status, seed, down, and its refusals."""

import json
import socket
from pathlib import Path

from migrate.lab.server import free_port
from tests.helpers import run_cli


def test_up_status_seed_down(isolated_lab_dir: Path) -> None:
    port = free_port()
    up = run_cli("lab", "up", "src", "--server", "redis-7.0", "--port", str(port),
                 "--", "--maxmemory", "64mb")
    assert up.code == 0, up.output
    assert f"127.0.0.1:{port}" in up.stdout
    instance_dir = isolated_lab_dir / "instances" / "src"
    assert (instance_dir / "server.log").exists()

    seeded = run_cli("lab", "seed", "src", "--keys", "3000", "--format", "json")
    assert seeded.code == 0, seeded.output
    report = json.loads(seeded.stdout)
    assert report["keys"] == 3000
    assert report["by_encoding"]["stream:stream"] >= 1

    status = run_cli("lab", "status", "--format", "json")
    assert status.code == 0, status.output
    [row] = json.loads(status.stdout)
    assert row["name"] == "src" and row["server"] == "redis-7.0" and row["port"] == port
    assert row["version"].startswith("7.0.") and row["state"] == "running"
    assert row["keys"] == 3000 and row["pid"] > 0

    table = run_cli("lab", "status")
    assert "src" in table.stdout and "3,000" in table.stdout

    # the extra server argument reached the server
    import redis
    assert redis.Redis(port=port).config_get("maxmemory")["maxmemory"] in ("67108864", b"67108864")

    again = run_cli("lab", "up", "src", "--server", "redis-7.0")
    assert again.code != 0 and "already running" in again.stderr

    down = run_cli("lab", "down", "src")
    assert down.code == 0, down.output
    assert not instance_dir.exists()
    assert run_cli("lab", "status", "--format", "json").stdout.strip() == "[]"


def test_port_in_use_is_one_clear_line(isolated_lab_dir: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = run_cli("lab", "up", "x", "--server", "valkey-8.0", "--port", str(port))
    assert result.code != 0
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines == [f"kvmigrate: error: port {port} on 127.0.0.1 is in use "
                     "(choose another with --port)"]


def test_unknown_name_is_one_clear_line(isolated_lab_dir: Path) -> None:
    for args in (("down", "ghost"), ("seed", "ghost"), ("url", "ghost")):
        result = run_cli("lab", *args)
        assert result.code == 2  # a usage error, as the README's exit codes say
        lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "no lab server named 'ghost'" in lines[0]


def test_binary_option_runs_a_server_the_user_has(isolated_lab_dir: Path) -> None:
    binary = isolated_lab_dir / "servers" / "valkey-9" / "root" / "usr" / "bin" / "valkey-server"
    # The packaged binary needs its suite's loader, so wrap it the way a user's own would run.
    from migrate.lab import install
    record = install.installed("valkey-9")
    assert record is not None
    wrapper = isolated_lab_dir / "valkey-server"
    wrapper.write_text(f"#!/bin/sh\nexec {' '.join(record.argv('valkey-server'))} \"$@\"\n")
    wrapper.chmod(0o755)
    assert binary.parent.exists()
    result = run_cli("lab", "up", "mine", "--binary", str(wrapper))
    assert result.code == 0, result.output
    assert "custom:valkey-9." in result.stdout
    assert run_cli("lab", "down", "mine").code == 0


def test_missing_binary_is_a_usage_error(isolated_lab_dir: Path) -> None:
    result = run_cli("lab", "up", "x", "--binary", "/nonexistent/redis-server")
    assert result.code == 2
    assert "no such file" in result.stderr
