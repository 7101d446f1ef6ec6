"""Other RDB parsers' corpora ($KVMIGRATE_TESTDATA/external-rdb, never kept in this repo):
every file in its manifest is read by kvmigrate's reader and copied with ``kvmigrate copy`` to
a real server, and both are compared with the file's expected contents; where the real
servers refuse a file, kvmigrate must refuse it too rather than copy something else."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from migrate.lab.fleet import Fleet
from migrate.lab.server import ServerProcess
from migrate.rdb import Function, RdbFormatError, read_file
from tests.conftest import TESTDATA, needs_testdata
from tests.helpers import run_cli
from tests.rdb.snapshot import rdb_snapshot, server_snapshot

CORPUS = TESTDATA / "external-rdb"
pytestmark = needs_testdata
UNSTATED = "(not stated by the oracle)"


def _manifest() -> list[dict[str, str]]:
    path = CORPUS / "manifest.json"
    if not path.is_file():
        return [{"rdb": "(KVMIGRATE_TESTDATA not set)", "expected": ""}]
    return json.loads(path.read_text())["files"]


def _bytes(value: Any) -> bytes:
    return bytes.fromhex(value["hex"]) if isinstance(value, dict) else str(value).encode()


def _sid(text: str) -> tuple[int, int]:
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _stream(key: dict[str, Any]) -> dict[str, Any]:
    groups = []
    for g in key.get("groups", []):
        pel = sorted((_sid(p[0]), _bytes(p[1]), p[3]) for p in g.get("pending", []))
        groups.append((_bytes(g["name"]), _sid(g["last_id"]), pel,
                       sorted(_bytes(c["name"]) for c in g.get("consumers", []))))
    return {"entries": [(_sid(eid), [_bytes(x) for x in fields])
                        for eid, fields in key.get("entries", [])],
            "length": key.get("len"), "last_id": _sid(key["last_id"]) if "last_id" in key
            else None, "groups": sorted(groups)}


def _stream_of(got: dict[str, Any]) -> dict[str, Any]:
    """The parts of a snapshot's stream the expected files state."""
    groups = sorted((g[0], g[1], sorted((p[0], p[1], p[3]) for p in g[3]),
                     sorted(c[0] for c in g[4])) for g in got["groups"])
    return {"entries": [(eid, [x for pair in fields for x in pair])
                        for eid, fields in got["entries"]],
            "length": got["length"], "last_id": got["last_id"], "groups": groups}


def _expected(entry: dict[str, str], *, live_only: bool) -> dict[tuple[int, bytes], tuple]:
    data = json.loads((CORPUS / entry["expected"]).read_text())
    now_ms = time.time() * 1000
    out: dict[tuple[int, bytes], tuple] = {}
    for key in data["keys"]:
        expire = key.get("expire_ms")
        if live_only and expire is not None and expire <= now_ms + 1000:
            continue  # a copy skips keys whose TTL has passed
        kind = key["type"]
        fe = {_bytes(f): ms for f, ms in key.get("field_expire_ms", [])} or None
        value: Any
        if not {"value", "values", "members", "fields", "entries", "module"} & set(key):
            value = UNSTATED  # the oracle fixes only the key's type and expiry
        elif kind == "string":
            value = _bytes(key["value"])
        elif kind == "list":
            value = [_bytes(v) for v in key["values"]]
        elif kind == "set":
            value = frozenset(_bytes(m) for m in key["members"])
        elif kind == "zset":
            value = {_bytes(m): float(s) for m, s in key["members"]}
        elif kind == "hash":
            value = {_bytes(f): _bytes(v) for f, v in key["fields"]}
            if live_only and fe:  # a copy drops fields whose TTL has passed
                gone = {f for f, ms in fe.items() if ms <= now_ms + 1000}
                value = {f: v for f, v in value.items() if f not in gone}
                fe = {f: ms for f, ms in fe.items() if f not in gone} or None
                if not value:
                    continue
        elif kind == "stream":
            value = _stream(key)
        else:
            value = key.get("module")
        out[(key["db"], _bytes(key["key"]))] = (kind, value, expire, fe)
    return out


def _comparable(snapshot: dict, expected: dict) -> dict[tuple[int, bytes], tuple]:
    """The snapshot in the expected files' terms. Hash fields whose TTL has passed are left
    out: the oracles (servers that loaded the file) dropped them, and so does a copy."""
    out = {}
    now_ms = time.time() * 1000
    for k, (kind, value, expire, fe) in snapshot.items():
        if kind == "hash" and fe:
            gone = {f for f, ms in fe.items() if ms <= now_ms}
            value = {f: v for f, v in value.items() if f not in gone}
            fe = {f: ms for f, ms in fe.items() if f not in gone} or None
        if kind == "stream":
            value = _stream_of(value)
        if k in expected and expected[k][1] is UNSTATED:
            value = UNSTATED
        out[k] = (kind, value, expire, fe)
    return out


def _functions(entry: dict[str, str]) -> dict[bytes, bytes]:
    data = json.loads((CORPUS / entry["expected"]).read_text())
    return {_bytes(f["name"]): _bytes(f["code"]) for f in data.get("functions", [])}


def _pairs(flat: Any) -> dict:
    return flat if isinstance(flat, dict) else dict(zip(flat[::2], flat[1::2], strict=True))


def _server_refusals(entry: dict[str, str]) -> dict[str, str]:
    return json.loads((CORPUS / entry["expected"]).read_text()).get("server_refuses") or {}


def _refused_by_every_server(entry: dict[str, str]) -> bool:
    data = json.loads((CORPUS / entry["expected"]).read_text())
    loads = data.get("server_loads") or {}
    return bool(loads) and all(v != "loads" for v in loads.values())


@pytest.fixture(scope="module")
def target(installed_specs: object, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[ServerProcess]:
    with Fleet(tmp_path_factory.mktemp("corpus-lab")) as fleet:
        yield fleet.start("valkey-9")


@pytest.mark.parametrize("entry", _manifest(), ids=lambda e: e["rdb"])
def test_file_reads_and_copies_as_expected(entry: dict[str, str], target: ServerProcess) -> None:
    rdb = CORPUS / entry["rdb"]
    every_server_refuses = _refused_by_every_server(entry)
    expected = _expected(entry, live_only=False)
    try:
        read = _comparable(rdb_snapshot(str(rdb)), expected)
        functions = {f.name.encode(): f.code for f in read_file(str(rdb))
                     if isinstance(f, Function)}
    except RdbFormatError:
        assert every_server_refuses, f"kvmigrate refuses {entry['rdb']}, which servers load"
        return
    assert read == expected
    assert functions == _functions(entry)

    client = target.client()
    client.flushall()
    client.function_flush()
    res = run_cli("copy", "--from-rdb", str(rdb), "--target", target.url, "--flush-target")
    modules = any(k[0] == "module" for k in read.values())
    if modules:  # a value the target cannot hold: the copy stops, naming why
        assert res.code != 0 and "module" in res.stderr.lower(), res.output
        return
    refusal = _server_refusals(entry).get("valkey 9.1.2", "")
    if every_server_refuses or (refusal and "format not supported" not in refusal):
        # The server refuses this file's data (not only its format, which a copy translates):
        # the copy must not say it worked.
        assert res.code != 0, res.output
        return
    assert res.code == 0, res.output
    expected_live = _expected(entry, live_only=True)
    assert _comparable(server_snapshot(target.endpoint), expected_live) == expected_live
    libraries = {lib[b"library_name"]: lib[b"library_code"]
                 for lib in (_pairs(x) for x in client.function_list(withcode=True))}
    assert libraries == _functions(entry)
