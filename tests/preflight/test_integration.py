"""`kvmigrate preflight` against real lab servers (sources and live targets)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migrate.lab.cluster import start_lone_node
from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.lab.server import ServerProcess
from tests.helpers import Result, run_cli

PASSWORD = "pf-Secr3t-word"
LIBRARY = """#!lua name=orders
local function total(keys, args)
  return redis.call('GET', keys[1])
end
local function archive(keys, args)
  local id = redis.call('LPOP', keys[1])
  redis.call('RENAME', 'order:' .. id, 'archive:' .. id)
  return id
end
redis.register_function('total', total)
redis.register_function('archive', archive)
"""


def preflight(*args: str) -> tuple[Result, dict[str, Any]]:
    result = run_cli("preflight", *args, "--format", "json")
    assert result.stdout, result.stderr
    return result, json.loads(result.stdout)


def by_id(doc: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for f in doc["findings"]:
        found.setdefault(f["id"], []).append(f["severity"])
    return found


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory,
          installed_specs: dict[str, Any]) -> Iterator[Fleet]:
    with Fleet(tmp_path_factory.mktemp("preflight-lab")) as f:
        yield f


@pytest.fixture(scope="module")
def redis8(fleet: Fleet) -> ServerProcess:
    """Redis 8 with the seed (field-TTL hash included) and a vector set, password-protected."""
    server = fleet.start("redis-8", password=PASSWORD)
    seed(server.endpoint, keys=2000)
    client = server.client()
    client.execute_command("VADD", "vec:items", "VALUES", 3, 0.1, 0.2, 0.3, "item-1")
    client.hset("user:field-ttl", mapping={"token": "t", "name": "n"})
    client.execute_command("HEXPIRE", "user:field-ttl", 3600, "FIELDS", 1, "token")
    return server


def test_redis8_to_live_valkey_8(fleet: Fleet, redis8: ServerProcess) -> None:
    target = fleet.start("valkey-8.0")
    result, doc = preflight("--source", redis8.url, "--to", "valkey", "--target", target.url)
    assert result.code == 1
    ids = by_id(doc)
    assert ids["data.field-ttl"] == ["blocker"]
    assert ids["data.module-type"] == ["blocker"]  # the vector set
    assert ids["rdb.version-gap"] == ["warning"]
    assert "blocker" in ids["commands.unsupported"]  # HEXPIRE/HPEXPIRE were served
    assert doc["target"]["live"] is True and doc["target"]["version"] == "8.0.1"
    assert doc["source"]["version"].startswith("8.")
    assert doc["summary"]["blocker"] == sum(s == "blocker" for v in ids.values() for s in v)
    assert "preflight:" in result.stderr and "blocker" in result.stderr


def test_redis8_to_live_valkey_9(fleet: Fleet, redis8: ServerProcess) -> None:
    target = fleet.start("valkey-9")
    result, doc = preflight("--source", redis8.url, "--to", "valkey", "--target", target.url)
    ids = by_id(doc)
    assert ids["data.field-ttl"] == ["warning"]
    field_ttl = next(f for f in doc["findings"] if f["id"] == "data.field-ttl")
    assert field_ttl["evidence"]["hashes_with_field_ttls"] >= 2
    assert ids["data.module-type"] == ["blocker"]
    assert ids["rdb.version-gap"] == ["warning"]
    assert "commands.unsupported" not in ids or "hexpire" not in json.dumps(doc["findings"])
    assert result.code == 1


def test_redis8_to_dragonfly(redis8: ServerProcess) -> None:
    import redis

    app = redis.Redis(host="127.0.0.1", port=redis8.port, password=PASSWORD)
    app.execute_command("CLIENT", "SETINFO", "LIB-NAME", "bullmq")  # as a BullMQ client
    try:
        result, doc = preflight("--source", redis8.url, "--to", "dragonfly")
    finally:
        app.close()
    ids = by_id(doc)
    assert ids["clients.libraries"] == ["warning"]
    assert doc["source"]["client_libraries"]["bullmq"] == 1
    assert ids["data.field-ttl"] == ["warning"]
    assert ids["data.module-type"] == ["blocker"]
    assert ids["modules.unsupported"] == ["warning"]
    assert ids["rdb.version-gap"] == ["info"]  # RDB 12 is still loadable by Dragonfly
    assert doc["target"] == {"flavor": "dragonfly", "version": "1.40", "live": False}
    assert result.code == 1


def test_password_never_appears(tmp_path: Path, redis8: ServerProcess) -> None:
    assert PASSWORD in redis8.url
    for fmt in ("table", "json", "markdown"):
        result = run_cli("preflight", "--source", redis8.url, "--to", "dragonfly",
                         "--format", fmt)
        assert result.code == 1, result.stderr
        assert PASSWORD not in result.output
        assert ":***@" in result.output
        report = tmp_path / f"report.{fmt}"
        written = run_cli("preflight", "--source", redis8.url, "--to", "valkey",
                          "--format", fmt, "--output", str(report))
        assert written.stdout == ""
        assert PASSWORD not in report.read_text() + written.output
    wrong = run_cli("preflight", "--source", redis8.url.replace(PASSWORD, PASSWORD + "x"),
                    "--to", "valkey")
    assert wrong.code == 3 and PASSWORD not in wrong.output


def test_markdown_is_a_change_review(redis8: ServerProcess) -> None:
    result = run_cli("preflight", "--source", redis8.url, "--to", "valkey",
                     "--target-version", "8.1", "--format", "markdown")
    text = result.stdout
    for heading in ("# Preflight: migration change review", "## Summary", "## Blockers",
                    "## Warnings", "## Source facts", "## Target facts"):
        assert heading in text
    assert "### `data.field-ttl`" in text and "Remedy:" in text and "Evidence:" in text


def test_redis70_function_library(fleet: Fleet) -> None:
    source = fleet.start("redis-7.0")
    client = source.client()
    client.execute_command("FUNCTION", "LOAD", LIBRARY)
    client.execute_command("FCALL", "total", 1, "orders:total")
    result, doc = preflight("--source", source.url, "--to", "dragonfly")
    ids = by_id(doc)
    assert ids["lua.functions"] == ["blocker"]
    assert ids["lua.undeclared-keys"] == ["blocker"]
    undeclared = next(f for f in doc["findings"] if f["id"] == "lua.undeclared-keys")
    assert undeclared["evidence"]["script"] == "function library orders"
    assert any("RENAME" in a and "concatenation" in a
               for a in undeclared["evidence"]["accesses"])
    assert result.code == 1
    _, doc = preflight("--source", source.url, "--to", "valkey")
    assert by_id(doc)["lua.functions"] == ["warning"]
    assert "lua.undeclared-keys" in by_id(doc)  # info only: Valkey allows it
    assert by_id(doc)["lua.undeclared-keys"] == ["info"]


def test_cluster_mode_source(fleet: Fleet) -> None:
    source = start_lone_node(fleet, "redis-7.0")
    client = source.client()
    client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
    deadline = time.monotonic() + 20
    while b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
        assert time.monotonic() < deadline, "the one-node cluster never became ok"
        time.sleep(0.1)
    for i in range(50):
        client.set(f"{{user{i}}}:name", f"n{i}")
    result, doc = preflight("--source", source.url, "--to", "dragonfly")
    assert result.code == 1
    assert by_id(doc)["cluster.protocol"] == ["blocker"]
    assert doc["source"]["mode"] == "cluster" and doc["source"]["keys"] == 50
    target = fleet.start("valkey-9")
    _, doc = preflight("--source", source.url, "--to", "valkey", "--target", target.url)
    cluster = next(f for f in doc["findings"] if f["id"] == "cluster.protocol")
    assert cluster["severity"] == "warning" and "standalone target" in cluster["title"]
    assert cluster["evidence"]["slots_assigned"] == 16384


def test_clean_source_passes_and_fail_on(fleet: Fleet, tmp_path: Path) -> None:
    source = fleet.start("redis-7.0")
    source.client().set("k", "v")
    target = fleet.start("valkey-8.1")
    target.client().set("left-over", "1")
    args = ["--source", source.url, "--to", "valkey", "--target", target.url]
    ok = run_cli("preflight", *args)
    assert ok.code == 0, ok.output
    assert "target.not-empty" in ok.stdout and "OK" in ok.stderr
    assert "acl.users" not in ok.stdout  # an open default user needs nothing recreated
    strict = run_cli("preflight", *args, "--fail-on", "warning")
    assert strict.code == 1 and "FAIL" in strict.stderr
    script = tmp_path / "bad.lua"
    script.write_text("return redis.call('GET', 'job:' .. ARGV[1])\n")
    _, doc = preflight("--source", source.url, "--to", "dragonfly", "--scripts", str(script),
                       "--scripts", str(Path(__file__).parent / "lua"))
    names = {f["evidence"].get("script") for f in doc["findings"]
             if f["id"] == "lua.undeclared-keys"}
    assert str(script) in names and len(names) >= 8


@pytest.mark.parametrize(("args", "code", "fragment"), [
    (["--source", "redis://127.0.0.1:1", "--to", "valkey"], 3, "cannot connect"),
    (["--source", "http://127.0.0.1:6379", "--to", "valkey"], 2, "malformed URL"),
    (["--source", "redis://127.0.0.1:notaport", "--to", "valkey"], 2, "malformed URL"),
    (["--source", "redis://127.0.0.1:1", "--to", "valkey", "--scripts", "/nonexistent.lua"],
     2, "script path not found"),
    (["--source", "redis://127.0.0.1:1", "--to", "mysql"], 2, "mysql"),
    (["--source", "redis://127.0.0.1:1", "--to", "valkey", "--target", "redis://h:1",
      "--target-version", "9.1"], 2, "not both"),
    (["--source", "redis://127.0.0.1:1", "--to", "valkey", "--target-version", "x.y"], 2,
     "malformed --target-version"),
])
def test_bad_input(args: list[str], code: int, fragment: str) -> None:
    result = run_cli("preflight", *args)
    assert result.code == code, result.output
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert fragment in result.stderr
    if code == 3 or "URL" in fragment or "script" in fragment or "not both" in fragment:
        assert len(lines) == 1 and lines[0].startswith("kvmigrate: error:"), lines


def test_wrong_password(fleet: Fleet) -> None:
    server = fleet.start("valkey-8.0", password="right-one")
    result = run_cli("preflight", "--source", server.url.replace("right-one", "wrong-one"),
                     "--to", "valkey")
    assert result.code == 3
    assert result.stderr.startswith("kvmigrate: error: cannot authenticate")
    assert "wrong-one" not in result.output and len(result.stderr.splitlines()) == 1


def test_restricted_user(fleet: Fleet) -> None:
    server = fleet.start("redis-7.0")
    server.client().set("k", "v")
    server.client().execute_command("ACL", "SETUSER", "watcher", "on", ">watch-pw", "~*",
                                    "+ping", "+info", "+client|setname", "+hello")
    url = f"redis://watcher:watch-pw@127.0.0.1:{server.port}"
    result = run_cli("preflight", "--source", url, "--to", "valkey")
    assert result.code == 4, result.output
    assert result.stderr.startswith("kvmigrate: error: ") and "refused SCAN" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "watch-pw" not in result.output


def test_evicting_source(fleet: Fleet) -> None:
    source = fleet.start("redis-7.0", extra_args=["--maxmemory", "2mb",
                                                  "--maxmemory-policy", "allkeys-lru"])
    client = source.client()
    pipe = client.pipeline(transaction=False)
    for i in range(4000):
        pipe.set(f"cache:{i}", "x" * 1024)
    pipe.execute()
    assert client.info("stats")["evicted_keys"] > 0
    _, doc = preflight("--source", source.url, "--to", "valkey")
    finding = next(f for f in doc["findings"] if f["id"] == "memory.source-evicting")
    assert finding["severity"] == "warning"
    assert finding["evidence"]["maxmemory_policy"] == "allkeys-lru"


def test_target_of_another_kind_and_bad_output(fleet: Fleet, tmp_path: Path) -> None:
    source = fleet.start("redis-7.0")
    target = fleet.start("valkey-9")
    wrong = run_cli("preflight", "--source", source.url, "--to", "dragonfly",
                    "--target", target.url)
    assert wrong.code == 2 and "is valkey 9.1.2, not dragonfly" in wrong.stderr
    missing_dir = tmp_path / "no" / "such" / "report.json"
    bad = run_cli("preflight", "--source", source.url, "--to", "valkey", "--format", "json",
                  "--output", str(missing_dir))
    assert bad.code == 2 and "no such directory" in bad.stderr and bad.stdout == ""
    assert not missing_dir.parent.exists()
