"""A converted valkey.conf starts real Valkey servers, which then report the converted values."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrate.convert import convert, parse_file
from migrate.convert.valkey_rules import RENAMES
from migrate.lab.fleet import Fleet
from tests.conftest import from_testdata
from tests.convert.conftest import UPSTREAM
from tests.helpers import run_cli

PASSWORD = "rt-pass word"  # with a space: quoting must survive the round trip

SOURCE = f"""# production cache, tuned over the years
maxmemory 1536mb
maxmemory-policy allkeys-lfu
requirepass "{PASSWORD}"
save 900 1
save 300 10
masterauth "primary secret"
masteruser replicator
slave-priority 42
hash-max-ziplist-entries 256
slowlog-max-len 64
client-output-buffer-limit slave 128mb 32mb 30
notify-keyspace-events Ex
rename-command FLUSHALL wipe-everything
include extra.conf
# Redis 8 only: Valkey would refuse to start on it
replica-full-sync-buffer-limit 64mb
"""

EXTRA = """# included: tuning for this host
maxclients 2000
timeout 0
"""

SPECS = {"valkey-8.0": "8.0", "valkey-8.1": "8.1", "valkey-9": "9.1"}


@pytest.fixture
def source_conf(tmp_path: Path) -> Path:
    (tmp_path / "extra.conf").write_text(EXTRA)
    conf = tmp_path / "redis.conf"
    conf.write_text(SOURCE)
    return conf


@pytest.mark.parametrize("spec", sorted(SPECS))
def test_converted_config_starts_valkey_with_the_converted_values(
        lab: Fleet, source_conf: Path, tmp_path: Path, spec: str) -> None:
    doc = parse_file(source_conf, include_base=tmp_path)
    result = convert(doc, "valkey", SPECS[spec])
    out = tmp_path / f"{spec}.conf"
    out.write_text(result.text)
    assert "replica-full-sync-buffer-limit 64mb" not in [
        line for line in result.text.splitlines() if not line.startswith("#")]
    server = lab.start(spec, config_file=out, password=PASSWORD, lab_defaults=False)
    client = server.client(decode_responses=True)
    got = client.config_get("*")
    assert got["maxmemory"] == str(1536 * 1024 * 1024)
    assert got["maxmemory-policy"] == "allkeys-lfu"
    assert got["requirepass"] == PASSWORD
    assert got["save"] == "900 1 300 10"
    assert got["primaryauth"] == "primary secret"
    assert got["primaryuser"] == "replicator"
    assert got["replica-priority"] == "42"
    assert got["hash-max-listpack-entries"] == "256"
    assert got["slowlog-max-len"] == "64"
    # written as class 'replica'; Valkey reports the class as 'slave'
    assert "slave 134217728 33554432 30" in got["client-output-buffer-limit"]
    assert "client-output-buffer-limit replica 128mb" in result.text
    assert got["notify-keyspace-events"] == "xE"
    assert got["maxclients"] == "2000"  # from the included file
    # rename-command kept: the old name is gone, the new one works
    with pytest.raises(Exception, match="unknown command"):
        client.execute_command("FLUSHALL")
    assert client.execute_command("wipe-everything") in (True, "OK")
    # renamed directives are written under Valkey's names
    assert "primaryauth " in result.text and "\nmasterauth " not in result.text


ALL_VALKEY = SPECS


@pytest.mark.parametrize("spec", sorted(ALL_VALKEY))
def test_valkey_renames_are_real_aliases(lab: Fleet, spec: str) -> None:
    """Each rename is an alias Valkey accepts: setting the old name sets the new one."""
    server = lab.start(spec)
    client = server.client(decode_responses=True)
    version = tuple(int(x) for x in ALL_VALKEY[spec].split("."))
    checked = 0
    for rename in RENAMES.values():
        if version < rename.since:
            continue
        before = client.config_get(rename.new)[rename.new]
        value = "kvm-alias-test" if rename.old in ("masterauth", "masteruser") else \
            str(int(before) + 1) if before.lstrip("-").isdigit() else before
        if rename.old == "slaveof":
            continue  # setting it would start replication
        client.config_set(rename.old, value)
        assert client.config_get(rename.new)[rename.new] == value, rename
        checked += 1
    assert checked >= 15


@pytest.mark.parametrize("spec", sorted(SPECS))
@pytest.mark.parametrize("name", ["upstream", "debian"])
def test_upstream_and_debian_configs_start_valkey(lab: Fleet, tmp_path: Path, spec: str,
                                                  name: str,
                                                  request: pytest.FixtureRequest) -> None:
    conf = (from_testdata(UPSTREAM.name) if name == "upstream"
            else request.getfixturevalue("debian_redis_conf"))
    result = convert(parse_file(conf), "valkey", SPECS[spec])
    out = tmp_path / f"{name}-{spec}.conf"
    # Valkey chdirs to `dir` while reading the file: it must exist on this host.
    out.write_text(result.text.replace("\ndir /var/lib/redis\n", f"\ndir {tmp_path}\n"))
    server = lab.start(spec, config_file=out, lab_defaults=False, name=f"{name}-{spec}")
    got = server.client(decode_responses=True).config_get("*")
    assert got["databases"] == "16"
    assert got["slowlog-log-slower-than"] == "10000"
    server.stop()


def test_live_redis_settings_carry_over_to_valkey(lab: Fleet, tmp_path: Path) -> None:
    """--from-server: CONFIG GET * of a running Redis 7.0 -> valkey.conf -> Valkey 9 agrees."""
    from migrate.convert.live import read_server

    source = lab.start("redis-7.0", password=PASSWORD)
    client = source.client()
    client.config_set("maxmemory", "700mb")
    client.config_set("maxmemory-policy", "volatile-ttl")
    client.config_set("save", "1200 3 120 50")
    client.config_set("hash-max-listpack-entries", "99")
    client.config_set("slowlog-max-len", "33")
    result = convert(read_server(source.url), "valkey", "9.1")
    assert PASSWORD in result.text
    out = tmp_path / "from-server.conf"
    out.write_text(result.text)
    target = lab.start("valkey-9", config_file=out, password=PASSWORD, lab_defaults=False)
    got = target.client(decode_responses=True).config_get("*")
    assert got["maxmemory"] == str(700 * 1024 * 1024)
    assert got["maxmemory-policy"] == "volatile-ttl"
    assert got["save"] == "1200 3 120 50"
    assert got["hash-max-listpack-entries"] == "99"
    assert got["commandlog-slow-execution-max-len"] == "33"
    assert got["hz"] == "10"  # a default: not restated, still Valkey's default


@pytest.mark.parametrize("spec", sorted(SPECS))
def test_the_default_output_starts_on_every_supported_valkey(lab: Fleet, tmp_path: Path,
                                                             spec: str,
                                                             debian_redis_conf: Path) -> None:
    """Without --target-version the file works on every supported Valkey, and says so."""
    out = tmp_path / "valkey.conf"
    res = run_cli("convert-config", str(debian_redis_conf), "--to", "valkey", "-o", str(out))
    assert res.code == 0, res.stderr
    assert "valid for every supported Valkey (8.0, 8.1, 9.1)" in res.stderr
    assert "--target-version" in res.stderr
    out.write_text(out.read_text().replace("\ndir /var/lib/redis\n", f"\ndir {tmp_path}\n"))
    server = lab.start(spec, config_file=out, lab_defaults=False, name=f"default-{spec}")
    assert server.client(decode_responses=True).config_get("databases") == {"databases": "16"}
    server.stop()
