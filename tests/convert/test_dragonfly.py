"""redis.conf -> Dragonfly flagfile: the mapping rules, units, schedules and findings.

Dragonfly cannot run here, so these are checks of the rules against the data list of known
flags (taken from Dragonfly's docs and source, migrate/convert/dragonfly_flags.py)."""

from __future__ import annotations

import re

import pytest

from migrate.convert import convert, parse_text
from migrate.convert.dragonfly_flags import ALL_FLAGS, KNOWN_FLAGS, source_of
from migrate.convert.dragonfly_rules import RULES
from migrate.convert.result import Conversion, Fate
from migrate.convert.to_dragonfly import save_to_cron
from migrate.model import Severity

FLAG_LINE = re.compile(r"^--([a-z0-9_]+)=(.*)$")

EVERY_RULE = """
port 6380
requirepass pw
masterauth mpw
masteruser repl
timeout 30
tcp-keepalive 60
tcp-backlog 1024
maxclients 500
dir /var/lib/redis
pidfile /run/redis.pid
unixsocket /run/redis.sock
unixsocketperm 700
databases 32
slowlog-log-slower-than 5000
slowlog-max-len 256
list-compress-depth 1
list-max-listpack-size -1
aclfile /etc/redis/users.acl
acllog-max-len 64
replica-priority 10
replica-announce-ip 10.0.0.5
cluster-announce-ip 10.0.0.6
tls-cert-file /tls/cert.pem
tls-key-file /tls/key.pem
tls-ca-cert-file /tls/ca.pem
tls-ca-cert-dir /tls/ca
tls-replication yes
maxmemory 4gb
maxmemory-policy allkeys-lru
save 3600 1 300 100 60 10000
dbfilename dump.rdb
notify-keyspace-events Ex
bind 10.0.0.1
rename-command CONFIG cfg-secret
rename-command FLUSHALL ""
replicaof 10.0.0.9 6379
loglevel warning
logfile /var/log/redis/redis.log
"""


def flags(result: Conversion) -> dict[str, str]:
    found = {}
    for line in result.text.splitlines():
        if line.startswith("#") or not line:
            continue
        match = FLAG_LINE.match(line)
        assert match, f"not a flagfile line: {line!r}"
        found[match.group(1)] = match.group(2)
    return found


def dragonfly(text: str) -> Conversion:
    return convert(parse_text(text, "redis.conf"), "dragonfly")


def test_every_emitted_flag_is_a_known_dragonfly_flag() -> None:
    result = dragonfly(EVERY_RULE)
    emitted = flags(result)
    assert set(emitted) <= ALL_FLAGS, set(emitted) - ALL_FLAGS
    assert len(emitted) >= 35


def test_every_rule_names_a_known_flag_and_a_source() -> None:
    for rule in RULES.values():
        assert rule.source, rule.redis
        if rule.kind != "none":
            assert rule.flag in ALL_FLAGS, rule.redis
            assert source_of(rule.flag)
    for source, names in KNOWN_FLAGS.items():
        assert source and names
        assert all(re.fullmatch(r"[a-z0-9_]+", n) for n in names)


def test_values_and_units_are_converted() -> None:
    f = flags(dragonfly(EVERY_RULE))
    assert f["maxmemory"] == str(4 * 1024**3)
    assert f["dbnum"] == "32"
    assert f["cache_mode"] == "true"
    assert f["snapshot_cron"] == "* * * * *"
    assert f["dbfilename"] == "dump"
    assert f["notify_keyspace_events"] == "Ex"
    assert "rename_command" not in f  # Dragonfly 1.40.1 refuses it (a blocker instead)
    assert f["restricted_commands"] == "flushall"
    assert f["replicaof"] == "10.0.0.9:6379"
    assert f["tls_replication"] == "true"
    assert f["minloglevel"] == "1"
    assert f["log_dir"] == "/var/log/redis"
    assert f["tcp_keepalive"] == "60"
    assert f["requirepass"] == "pw"


@pytest.mark.parametrize(("points", "cron"), [
    ([(3600, 1), (300, 100), (60, 10000)], "* * * * *"),
    ([(900, 1), (300, 10)], "*/5 * * * *"),
    ([(420, 1)], "*/6 * * * *"),  # rounded down to a step that divides the hour
    ([(3600, 1)], "0 * * * *"),
    ([(7200, 1)], "0 */2 * * *"),
    ([(18000, 1)], "0 */4 * * *"),
    ([(86400, 1)], "0 0 * * *"),
    ([(30, 1)], "* * * * *"),
])
def test_save_points_become_a_cron_schedule(points: list[tuple[int, int]], cron: str) -> None:
    assert save_to_cron(points)[0] == cron


def test_repeated_save_lines_add_up_and_empty_save_resets() -> None:
    assert flags(dragonfly("save 3600 1\nsave 120 5\n"))["snapshot_cron"] == "*/2 * * * *"
    assert flags(dragonfly("save 60 1\nsave \"\"\nsave 3600 1\n"))["snapshot_cron"] == \
        "0 * * * *"
    assert "snapshot_cron" not in flags(dragonfly('save ""\n'))


def test_missing_save_uses_redis_default_schedule() -> None:
    result = dragonfly("port 6379\n")
    assert flags(result)["snapshot_cron"] == "* * * * *"
    assert any(f.id == "dragonfly.save-default" for f in result.findings)


@pytest.mark.parametrize(("text", "blocked"), [
    ("appendonly yes\n", True),
    ("appendonly no\n", False),
    ("loadmodule /usr/lib/redis/modules/redisbloom.so\n", True),
    ("user alice on >pw ~* +@all\n", True),
    ("cluster-enabled yes\n", True),
    ("cluster-enabled no\n", False),
    ("notify-keyspace-events Kg\n", True),
    ("notify-keyspace-events KEA\n", False),
    ("tls-port 6380\n", True),  # beside the default plain port 6379
    ("port 0\ntls-port 6380\n", False),
    ("maxmemory-policy volatile-lru\n", False),
])
def test_blockers(text: str, blocked: bool) -> None:
    result = dragonfly(text)
    assert result.blocked is blocked, [f.title for f in result.findings]


def test_tls_only_server_serves_tls_on_its_port() -> None:
    f = flags(dragonfly("port 0\ntls-port 6380\n"))
    assert f["port"] == "6380" and f["tls"] == "true"


def test_volatile_policy_chooses_no_eviction_with_a_warning() -> None:
    result = dragonfly("maxmemory-policy volatile-ttl\n")
    assert flags(result)["cache_mode"] == "false"
    [warning] = [f for f in result.findings if f.id == "dragonfly.volatile-eviction"]
    assert warning.severity is Severity.WARNING


def test_bind_keeps_first_address_and_warns() -> None:
    result = dragonfly("bind 127.0.0.1 -::1\n")
    assert flags(result)["bind"] == "127.0.0.1"
    assert any(f.id == "dragonfly.bind-one-address" for f in result.findings)


def test_every_unmapped_directive_has_a_finding_with_its_line() -> None:
    result = dragonfly("port 6379\nhash-max-listpack-entries 128\nactiverehashing yes\n"
                       "my-module-option 3\n")
    lines = {f.evidence.get("line") for f in result.findings if f.evidence}
    assert {2, 3, 4} <= lines
    fates = {f.directive.name: f.fate for f in result.fates}
    assert fates["hash-max-listpack-entries"] is Fate.DROPPED
    assert fates["my-module-option"] is Fate.DROPPED
    unknown = [f for f in result.findings if f.id == "dragonfly.unknown-directive"]
    assert unknown and unknown[0].severity is Severity.WARNING


def test_last_line_wins_and_earlier_lines_are_overridden() -> None:
    result = dragonfly("maxmemory 1gb\nmaxmemory 2gb\n")
    assert flags(result)["maxmemory"] == str(2 * 1024**3)
    fates = [(f.directive.line, f.fate) for f in result.fates if f.directive.name == "maxmemory"]
    assert (1, Fate.OVERRIDDEN) in fates and (2, Fate.CHANGED) in fates


def test_small_maxmemory_warns_about_dragonfly_minimum() -> None:
    result = dragonfly("maxmemory 100mb\n")
    assert any(f.id == "dragonfly.maxmemory-small" for f in result.findings)


def test_renames_are_a_blocker_and_disabled_commands_restricted() -> None:
    result = dragonfly("rename-command CONFIG cfg-a\nrename-command cfg-a cfg-b\n"
                       "rename-command DEBUG \"\"\n")
    f = flags(result)
    assert "rename_command" not in f and f["restricted_commands"] == "debug"
    [blocker] = [x for x in result.findings if x.id == "dragonfly.rename-command"]
    assert blocker.title.endswith("rename-command has no Dragonfly equivalent (renamed: config)")
    assert "cfg-b" not in result.text and "cfg-b" not in str(blocker)


def test_value_with_surrounding_spaces_is_flagged() -> None:
    result = dragonfly('requirepass " padded "\n')
    assert flags(result)["requirepass"] == " padded "
    assert any(f.id == "dragonfly.flag-whitespace" for f in result.findings)
    assert all(" padded " not in str(f.to_dict()) for f in result.findings)
