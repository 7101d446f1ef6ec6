"""Each lab spec starts as a real server and reports the version it should."""

import pytest

from migrate.lab.fleet import Fleet
from migrate.lab.specs import SPECS

# spec -> (server_name in INFO or None for Redis, version prefix)
EXPECTED = {
    "redis-7.0": (None, "7.0."),
    "redis-8.0": (None, "8.0."),
    "redis-8": (None, "8."),
    "valkey-8.0": ("valkey", "8.0."),
    "valkey-8.1": ("valkey", "8.1."),
    "valkey-9": ("valkey", "9."),
}


def test_every_spec_is_covered() -> None:
    assert set(EXPECTED) == set(SPECS)


@pytest.mark.parametrize("spec", list(EXPECTED))
def test_spec_starts_and_reports_its_version(lab: Fleet, spec: str) -> None:
    server = lab.start(spec)
    info = server.client(decode_responses=True).info("server")
    name, prefix = EXPECTED[spec]
    if name == "valkey":
        assert info["server_name"] == "valkey"
        version = info["valkey_version"]
    else:
        assert "server_name" not in info or info["server_name"] != "valkey"
        version = info["redis_version"]
    assert str(version).startswith(prefix), version
    assert str(version) == server.version
    assert info["tcp_port"] == server.port
    # bound to loopback only
    config = server.client(decode_responses=True).config_get("bind")
    assert config["bind"] == "127.0.0.1"


def test_server_runs_in_its_own_directory_with_its_own_log(lab: Fleet) -> None:
    server = lab.start("valkey-8.0")
    assert server.log_path.exists()
    assert "Ready to accept connections" in server.log_path.read_text()
    assert server.client(decode_responses=True).config_get("dir")["dir"] == server.directory


def test_stop_ends_the_process(lab: Fleet) -> None:
    server = lab.start("redis-7.0")
    assert server.alive()
    server.stop()
    assert not server.alive()
