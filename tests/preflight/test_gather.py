"""Fact gathering on real servers: read-only, bounded by --sample, every command counted."""

from __future__ import annotations

from typing import Any

from migrate.endpoint import raw_command
from migrate.inspect.gather import gather_source, gather_target, parse_acl_user
from migrate.inspect.probe import READ_ONLY, Probe
from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed

WRITE_COMMANDS = {"set", "del", "unlink", "hset", "config|set", "flushall", "flushdb", "keys",
                  "expire", "pexpire", "rename", "restore", "debug"}


def _stats(client: Any) -> dict[str, int]:
    info = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): v["calls"] for k, v in info.items()}


def test_gathering_is_read_only_and_counted(lab: Fleet) -> None:
    server = lab.start("redis-8", password="pw-gather")
    seed(server.endpoint, keys=3000)
    client = server.client()
    client.config_set("notify-keyspace-events", "Ex")
    before_stats = _stats(client)
    before = client.info("all")
    facts = gather_source(server.endpoint, sample=500)
    after = client.info("all")
    after_stats = _stats(client)
    assert after["rdb_changes_since_last_save"] == before["rdb_changes_since_last_save"]
    assert client.dbsize() == before["db0"]["keys"]
    used = {cmd for cmd, calls in after_stats.items() if calls > before_stats.get(cmd, 0)}
    assert not used & WRITE_COMMANDS, used & WRITE_COMMANDS
    # The server saw what the probe counted (plus handshakes: HELLO/AUTH/SETINFO/SELECT and
    # the test's own INFO calls).
    processed = after["total_commands_processed"] - before["total_commands_processed"]
    assert facts.commands_sent <= processed <= facts.commands_sent + 30
    assert facts.sample.sampled == 500 and not facts.sample.complete
    assert facts.sample.field_ttl_checked
    assert facts.config["requirepass"] == "***"
    assert "pw-gather" not in repr(facts)
    assert set(facts.keyspace) == {0, 1, 2}
    assert facts.modules == [{"name": "vectorset", "ver": 1}]
    assert facts.commandstats.get("hpexpire", 0) >= 1


def test_sample_covers_small_keyspace_and_finds_field_ttls(lab: Fleet) -> None:
    server = lab.start("valkey-9")
    client = server.client()
    client.hset("big-hash", mapping={f"f{i}": "v" * 20 for i in range(300)})
    client.execute_command("HEXPIRE", "big-hash", 100, "FIELDS", 300,
                           *[f"f{i}" for i in range(300)])
    client.hset("plain", "a", 1)
    client.set("s", "x" * (2 * 2**20))
    facts = gather_source(server.endpoint, sample=10_000)
    assert facts.flavor == "valkey" and facts.sample.complete
    assert facts.sample.field_ttl_keys == ["big-hash"]
    big = {k.key: k for k in facts.sample.big_keys}
    assert big["s"].length == 2 * 2**20 and big["s"].memory >= 2 * 2**20


def test_live_target_facts(lab: Fleet) -> None:
    server = lab.start("valkey-8.0", extra_args=["--maxmemory", "64mb"])
    facts = gather_target(server.endpoint)
    assert (facts.flavor, facts.version, facts.live) == ("valkey", "8.0.1", True)
    assert facts.config["maxmemory"] == str(64 * 2**20)
    assert "get" in (facts.commands or []) and "hexpire" not in (facts.commands or [])


def test_probe_refuses_writes(lab: Fleet) -> None:
    server = lab.start("redis-7.0")
    probe = Probe(server.endpoint)
    try:
        for command in (("SET", "a", "1"), ("CONFIG", "SET", "maxmemory", "1"), ("KEYS", "*"),
                        ("FLUSHALL",)):
            try:
                probe.call(*command)
            except Exception as exc:
                assert "not a read-only command" in str(exc)
            else:
                raise AssertionError(f"{command} was sent")
        assert raw_command(server.client(), "DBSIZE") == 0
        assert "CONFIG GET" in READ_ONLY and "KEYS" not in READ_ONLY
    finally:
        probe.close()


def test_acl_line_drops_password_hashes() -> None:
    user = parse_acl_user("user app on #5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a1"
                          "1ef721d1542d8 >plain ~app:* resetchannels -@all +get")
    assert user.name == "app" and user.enabled and not user.nopass
    assert "#" not in user.rules and ">" not in user.rules
    assert user.rules == "~app:* resetchannels -@all +get"


def test_sample_budgets_add_up() -> None:
    from migrate.inspect.sample import budgets

    keyspace = {0: {"keys": 900_000}, 1: {"keys": 70_000}, 2: {"keys": 30_000}}
    shares = budgets(keyspace, 10_000)
    assert sum(shares.values()) == 10_000 and shares[0] > shares[1] > shares[2] > 0
    assert budgets(keyspace, 0) == {}
    assert budgets({0: {"keys": 5}, 3: {"keys": 0}}, 100) == {0: 5}


def test_info_parsing() -> None:
    from migrate.inspect.info import commandstats_of, keyspace_of, parse_info

    info = parse_info(b"# Server\r\nredis_version:8.0.6\r\n\r\n# Keyspace\r\n"
                      b"db0:keys=10,expires=2,avg_ttl=0,subexpiry=1\r\ndb3:keys=1,expires=0\r\n"
                      b"# Commandstats\r\ncmdstat_client|list:calls=4,usec=9,rejected_calls=0\r\n")
    assert info["server"]["redis_version"] == "8.0.6"
    assert keyspace_of(info) == {0: {"keys": 10, "expires": 2, "avg_ttl": 0, "subexpiry": 1},
                                 3: {"keys": 1, "expires": 0}}
    assert commandstats_of(info) == {"client|list": 4}


def test_client_libraries_leave_out_kvmigrate() -> None:
    from migrate.inspect.gather import client_libraries

    listing = (b"id=1 name=kvmigrate cmd=info lib-name=redis-py\n"
               b"id=2 name= cmd=get lib-name=jedis\nid=4 name=web cmd=get lib-name=jedis\n"
               b"id=3 name= cmd=client|list lib-name=redis-py\nid=5 name= cmd=get\n")
    assert client_libraries(listing) == {"jedis": 2, "(unnamed)": 1}
