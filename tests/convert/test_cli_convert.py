"""`kvmigrate convert-config` as a user runs it: outputs, exit codes, secrets, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migrate.lab.fleet import Fleet
from tests.helpers import run_cli

SECRETS = ["s3cr3t-req", "s3cr3t-primary", "s3cr3t-user", "s3cr3t-renamed"]

CONF = f"""requirepass {SECRETS[0]}
masterauth "{SECRETS[1]}"
user alice on >{SECRETS[2]} ~* +@all
rename-command CONFIG {SECRETS[3]}
maxmemory 1gb
appendonly yes
"""


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "redis.conf"
    path.write_text(CONF)
    return path


def test_valkey_to_stdout_with_summary_on_stderr(conf: Path) -> None:
    r = run_cli("convert-config", str(conf), "--to", "valkey")
    assert r.code == 0, r.stderr
    assert "primaryauth" in r.stdout and "maxmemory 1gb" in r.stdout
    assert "1 renamed" in r.stderr and "mapped" in r.stderr
    for secret in SECRETS:
        assert secret in r.stdout  # the converted file needs them
        assert secret not in r.stderr


def test_dragonfly_blocker_exits_1_and_still_writes(conf: Path, tmp_path: Path) -> None:
    out = tmp_path / "dragonfly.flags"
    r = run_cli("convert-config", str(conf), "--to", "dragonfly", "-o", str(out))
    assert r.code == 1, r.stderr
    assert r.stdout == ""
    assert "[blocker]" in r.stderr and "appendonly" in r.stderr
    text = out.read_text()
    assert f"--requirepass={SECRETS[0]}" in text
    assert out.stat().st_mode & 0o777 == 0o600  # it holds passwords
    for secret in SECRETS:
        assert secret not in r.stderr


@pytest.mark.parametrize("target", ["valkey", "dragonfly"])
def test_json_gives_every_directive_fate_without_secrets(conf: Path, target: str) -> None:
    r = run_cli("convert-config", str(conf), "--to", target, "--format", "json")
    assert r.code == (1 if target == "dragonfly" else 0), r.stderr
    payload = json.loads(r.stdout)
    assert [d["line"] for d in payload["directives"]] == [1, 2, 3, 4, 5, 6]
    assert all(d["file"] == str(conf) and d["fate"] for d in payload["directives"])
    assert set(payload["counts"]) >= {"mapped", "renamed", "changed", "dropped", "unsupported"}
    for secret in SECRETS:
        assert secret not in r.stdout and secret not in r.stderr


@pytest.mark.parametrize(("text", "message"), [
    ('requirepass "open\n', "redis.conf:1: unbalanced quotes"),
    ("maxmemory 1tb\n", "redis.conf:1: unknown unit"),
    ("port 6379\ninclude missing.conf\n", "redis.conf:2: missing.conf: no such included file"),
    ("include redis.conf\n", "redis.conf:1: include loop"),
    ("maxmemory 1gb # half the box\n", "redis.conf:1: maxmemory takes 1 argument"),
    ("port 6379\n\x00\x01\x02", "redis.conf:2: binary data"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path: Path, text: str,
                                                          message: str) -> None:
    conf = tmp_path / "redis.conf"
    conf.write_text(text)
    out = tmp_path / "out.conf"
    out.write_text("previous content\n")
    r = run_cli("convert-config", str(conf), "--to", "valkey", "-o", str(out),
                "--include-base", str(tmp_path))
    assert r.code == 2
    assert r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    assert out.read_text() == "previous content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.conf", "redis.conf"]


def test_usage_errors(conf: Path) -> None:
    assert run_cli("convert-config", str(conf), "--to", "memcached").code == 2
    assert run_cli("convert-config", "--to", "valkey").code == 2
    assert run_cli("convert-config", str(conf), "--to", "valkey", "--format", "xml").code == 2
    r = run_cli("convert-config", str(conf), "--to", "valkey", "--target-version", "7.2")
    assert r.code == 2 and "older than" in r.stderr


def test_relative_include_resolves_from_the_include_base(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "a.conf").write_text("maxclients 111\n")
    (tmp_path / "conf.d" / "b.conf").write_text("maxclients 222\n")
    (tmp_path / "redis.conf").write_text("include conf.d/*.conf\ninclude nothing-*.conf\n")
    r = run_cli("convert-config", str(tmp_path / "redis.conf"), "--to", "dragonfly",
                "--include-base", str(tmp_path), "--format", "json")
    payload = json.loads(r.stdout)
    fates = [(d["file"], d["fate"]) for d in payload["directives"]
             if d["directive"] == "maxclients"]
    assert fates == [(str(tmp_path / "conf.d" / "a.conf"), "overridden"),
                     (str(tmp_path / "conf.d" / "b.conf"), "mapped")]


def test_from_server_reads_live_settings(lab: Fleet, tmp_path: Path) -> None:
    server = lab.start("redis-7.0", password="live-s3cret")
    client = server.client()
    client.config_set("maxmemory", "300mb")
    client.config_set("maxmemory-policy", "allkeys-lru")
    client.config_set("notify-keyspace-events", "Ex")
    out = tmp_path / "from-server.flags"
    r = run_cli("convert-config", "--from-server", server.url, "--to", "dragonfly",
                "-o", str(out))
    assert r.code == 0, r.stderr
    text = out.read_text()
    assert f"--maxmemory={300 * 1024 * 1024}" in text
    assert "--cache_mode=true" in text
    assert "--notify_keyspace_events=Ex" in text
    assert "--requirepass=live-s3cret" in text
    assert "--hz=" not in text  # defaults are not restated
    assert "live-s3cret" not in r.stderr and "***" in r.stderr
    r = run_cli("convert-config", "--from-server", server.url, "--to", "valkey",
                "--format", "json")
    assert r.code == 0 and "live-s3cret" not in r.stdout
    names = {d["directive"] for d in json.loads(r.stdout)["directives"]}
    assert {"maxmemory", "maxmemory-policy", "requirepass"} <= names


def test_from_server_with_a_wrong_password_exits_3(lab: Fleet) -> None:
    server = lab.start("redis-7.0", password="right")
    url = server.url.replace(":right@", ":wrong@")
    r = run_cli("convert-config", "--from-server", url, "--to", "valkey")
    assert r.code == 3 and "wrong" not in r.stderr


def test_json_with_output_writes_the_file_too(conf: Path, tmp_path: Path) -> None:
    out = tmp_path / "valkey.conf"
    r = run_cli("convert-config", str(conf), "--to", "valkey", "--format", "json", "-o", str(out))
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["output"] == str(out)
    assert "primaryauth" in out.read_text()
