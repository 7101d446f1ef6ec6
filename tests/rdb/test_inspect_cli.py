"""`kvmigrate rdb inspect` on files written by real servers, and on bad input."""

from __future__ import annotations

import json
from pathlib import Path

from migrate.lab.seed import census
from tests.conftest import needs_testdata
from tests.helpers import run_cli
from tests.rdb.conftest import SavedRdb
from tests.rdb.test_redis_assets import ASSETS


def test_json_counts_match_the_server(saved_rdbs: dict[str, SavedRdb]) -> None:
    saved = saved_rdbs["redis-8"]
    res = run_cli("rdb", "inspect", str(saved.path), "--format", "json", "--to", "valkey")
    assert res.code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["producer"] == {"flavor": "redis", "version": "8.0.6", "magic": "REDIS",
                                "rdb_version": 12}
    assert data["checksum"] == "verified"
    assert data["keys"] == 1500
    live = census(saved.server.endpoint)
    by_type: dict[str, int] = {}
    for (kind, _enc), n in live.items():
        by_type[kind] = by_type.get(kind, 0) + n
    assert data["by_type"] == dict(sorted(by_type.items()))
    assert data["by_encoding"]["hash/listpack-ex"] == 1
    assert data["field_ttl"]["hashes"] == 1
    assert data["biggest_keys"][0]["key"].startswith("seed:big:")
    assert data["expiries"]["keys_with_ttl"] > 0
    findings = {f["id"]: f for f in data["target"]["findings"]}
    assert data["target"]["server"] == "valkey 8.0.1"
    assert findings["rdb.field-ttl"]["severity"] == "blocker"
    assert findings["rdb.native-load"]["severity"] == "warning"


def test_valkey9_target_takes_field_ttls(saved_rdbs: dict[str, SavedRdb]) -> None:
    res = run_cli("rdb", "inspect", str(saved_rdbs["valkey-9"].path), "--to", "valkey",
                  "--target-version", "9.1.2", "--format", "json")
    data = json.loads(res.stdout)
    findings = {f["id"]: f for f in data["target"]["findings"]}
    assert data["producer"]["magic"] == "VALKEY"
    assert "rdb.field-ttl" not in findings
    assert findings["rdb.native-load"]["severity"] == "info"


def test_table_output(saved_rdbs: dict[str, SavedRdb]) -> None:
    res = run_cli("rdb", "inspect", str(saved_rdbs["redis-7.0"].path), "--to", "dragonfly")
    assert res.code == 0
    assert "redis 7.0.15 (RDB 10, magic REDIS)" in res.stdout
    assert "keys: 1,500" in res.stdout and "biggest keys" in res.stdout
    assert "for dragonfly 1.40:" in res.stdout


@needs_testdata
def test_a_corrupt_ziplist_is_one_line_and_exit_2() -> None:
    res = run_cli("rdb", "inspect", str(ASSETS / "corrupt_ziplist.rdb"))
    assert res.code == 2 and res.stdout == ""
    assert res.stderr.strip() == ("kvmigrate: error: invalid RDB at byte 488: ziplist of 5 "
                                  "bytes is too short")


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path,
                                         saved_rdbs: dict[str, SavedRdb]) -> None:
    truncated = tmp_path / "t.rdb"
    truncated.write_bytes(saved_rdbs["redis-8"].path.read_bytes()[:5000])
    res = run_cli("rdb", "inspect", str(truncated))
    assert res.code == 2 and "truncated" in res.stderr and len(res.stderr.splitlines()) == 1
    res = run_cli("rdb", "inspect", str(tmp_path / "missing.rdb"))
    assert res.code == 2 and "cannot read" in res.stderr
