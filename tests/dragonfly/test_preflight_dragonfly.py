"""`kvmigrate preflight --to dragonfly` with a live Dragonfly (the lab's v1.40.1) as --target:
its version, the commands it lacks, and the Lua scripts it would reject, each flagged script
then run on the real server to show the error, and the advice (--default_lua_flags,
--lua_undeclared_keys_shas) checked on Dragonfly servers started with it. Preflight writes
nothing to the target."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import redis

from migrate.endpoint import raw_command
from migrate.lab.fleet import Fleet
from migrate.lab.server import ServerProcess
from tests.helpers import run_cli

# builds its key from ARGV: Dragonfly refuses it unless undeclared keys are allowed
SCRIPT = ("local counter = 'jobs:' .. ARGV[1]\n"
          "redis.call('INCR', counter)\n"
          "return redis.call('GET', counter)\n")
SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()
LIBRARY = ("#!lua name=jobs\nredis.register_function('bump', function(keys, args) "
           "return redis.call('INCR', 'jobs:' .. args[1]) end)")


def _source(lab: Fleet) -> ServerProcess:
    """A Redis 7.0 source with a function library that builds its key, and commands run that
    Dragonfly lacks (so INFO commandstats shows them)."""
    source = lab.start("redis-7.0")
    client = source.client()
    raw_command(client, "FUNCTION", "LOAD", LIBRARY)
    client.geoadd("g", (13.36, 38.11, "Palermo"))
    raw_command(client, "GEOSEARCHSTORE", "g:near", "g", "FROMLONLAT", 13, 38, "BYRADIUS",
                200, "km")
    raw_command(client, "SWAPDB", 0, 1)
    raw_command(client, "SWAPDB", 0, 1)
    return source


def _preflight(source: ServerProcess, target: ServerProcess, script: Path) -> dict:
    res = run_cli("preflight", "--source", source.url, "--to", "dragonfly", "--target",
                  target.url, "--scripts", str(script), "--format", "json")
    assert res.code == 1, res.output  # blockers: exit 1
    return json.loads(res.stdout)


def _untouched(target: ServerProcess) -> None:
    client = target.client()
    assert client.dbsize() == 0
    assert raw_command(client, "SCRIPT", "EXISTS", SHA) == [0]  # nothing loaded either


def _findings(report: dict, check: str) -> list[dict]:
    return [f for f in report["findings"] if f["id"] == check]


def test_preflight_against_a_live_dragonfly(dragonfly_installed: object, lab: Fleet,
                                            tmp_path: Path) -> None:
    source = _source(lab)
    target = lab.start("dragonfly")
    script = tmp_path / "enqueue.lua"
    script.write_text(SCRIPT)
    report = _preflight(source, target, script)
    assert report["target"]["live"] and report["target"]["flavor"] == "dragonfly"
    assert report["target"]["version"] == "1.40.1"
    [missing] = _findings(report, "commands.unsupported")
    assert missing["severity"] == "blocker"
    for command in ("geosearchstore", "swapdb", "function|load"):
        assert command in missing["title"], missing["title"]
    [functions] = _findings(report, "lua.functions")
    assert functions["severity"] == "blocker" and "has no FUNCTION/FCALL" in functions["title"]
    undeclared = {f["evidence"]["script"]: f for f in _findings(report, "lua.undeclared-keys")}
    flagged = undeclared[str(script)]
    assert flagged["severity"] == "blocker" and flagged["evidence"]["sha1"] == SHA
    assert flagged["evidence"]["accesses"] == [
        "line 2: INCR of a key built by concatenation",
        "line 3: GET of a key built by concatenation"]
    assert "--default_lua_flags=allow-undeclared-keys" in flagged["remediation"]
    assert undeclared["function library jobs"]["severity"] == "blocker"
    _untouched(target)

    # the flagged script really fails on this Dragonfly ...
    with pytest.raises(redis.ResponseError) as refused:
        target.client().eval(SCRIPT, 0, "42")
    print(f"Dragonfly 1.40.1 refuses the flagged script: {refused.value}")
    assert "script tried accessing undeclared key" in str(refused.value)
    # ... and runs on one started as the advice says
    allowing = lab.start("dragonfly", extra_args=["--default_lua_flags=allow-undeclared-keys"])
    assert allowing.client().eval(SCRIPT, 0, "42") == b"1"
    assert allowing.client().get("jobs:42") == b"1"


def test_preflight_sees_a_script_allowed_by_its_sha(dragonfly_installed: object, lab: Fleet,
                                                    tmp_path: Path) -> None:
    """--lua_undeclared_keys_shas is readable with CONFIG GET (--default_lua_flags is not):
    preflight reads it and lowers the finding to info for the script it names."""
    source = _source(lab)
    target = lab.start("dragonfly", extra_args=[f"--lua_undeclared_keys_shas={SHA}"])
    script = tmp_path / "enqueue.lua"
    script.write_text(SCRIPT)
    report = _preflight(source, target, script)  # the function library is still a blocker
    flagged = [f for f in _findings(report, "lua.undeclared-keys")
               if f["evidence"]["script"] == str(script)]
    assert [f["severity"] for f in flagged] == ["info"]
    assert "allowed on the target by lua_undeclared_keys_shas" in flagged[0]["title"]
    _untouched(target)
    assert target.client().eval(SCRIPT, 0, "7") == b"1"  # and it does run there
