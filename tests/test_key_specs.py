"""Where a command's keys are comes from the servers' own key specifications
(checks/data/key_specs.json, from every lab server's COMMAND INFO): checked against COMMAND
GETKEYS of real servers, and used by the cluster router."""

from __future__ import annotations

import pytest

from migrate.endpoint import raw_command
from migrate.keyspec import command_keys, specs_of_server, table
from migrate.lab.fleet import Fleet
from migrate.protocol.cluster.router import first_key

CASES = [
    ["SET", "k", "v", "EX", "10"],
    ["BITOP", "AND", "dest", "a", "b"],
    ["ZUNIONSTORE", "dest", "2", "a", "b", "WEIGHTS", "1", "2"],
    ["EVAL", "return 1", "2", "k1", "k2", "arg"],
    ["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"],
    ["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s1", "s2", ">", ">"],
    ["MSET", "a", "1", "b", "2"],
    ["LMOVE", "src", "dst", "LEFT", "RIGHT"],
    ["GEOSEARCHSTORE", "dst", "src", "FROMLONLAT", "1", "2", "BYRADIUS", "1", "km"],
    ["COPY", "a", "b", "DB", "1"],
    ["MIGRATE", "h", "1", "", "0", "100", "KEYS", "a", "b"],
]


@pytest.mark.parametrize("spec", ["redis-7.0", "valkey-9"])
def test_keys_agree_with_the_servers_getkeys(lab: Fleet, spec: str) -> None:
    client = lab.start(spec).client()
    for args in CASES:
        want = [k for k in raw_command(client, "COMMAND", "GETKEYS", *args)]  # type: ignore
        assert command_keys(args) == want, args
    # SORT's STORE key has an 'unknown' spec (the server finds it with its own code): the
    # first key, which routing needs, is known
    assert command_keys(["SORT", "src", "STORE", "dst"]) == [b"src"]


def test_the_data_is_what_the_servers_say(lab: Fleet) -> None:
    """A lab server's key specs are in the committed table (regenerate with
    scripts/gen_key_specs.py when a server version changes)."""
    live = specs_of_server(lab.start("valkey-9").client())
    assert live and all(table()[name] == specs for name, specs in live.items())


def test_the_router_routes_by_the_first_key() -> None:
    assert first_key(["BITOP", "AND", "dest", "a", "b"]) == b"dest"  # not "AND"
    assert first_key(["XGROUP", "CREATE", "s", "g", "$"]) == b"s"
    assert first_key(["EVAL", "return 1", "0"]) is None
    assert command_keys(["FLUSHALL"]) == [] and command_keys(["NOSUCH", "x"]) is None
