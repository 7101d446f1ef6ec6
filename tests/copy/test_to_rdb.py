"""`kvmigrate copy --to-rdb`: a down-versioned RDB that the target loads at startup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.rdb import RdbReader
from tests.copy.conftest import Source
from tests.helpers import run_cli
from tests.rdb.snapshot import differences, server_snapshot, without_active_time

FIELD_TTL_KEY = (0, b"seed:hash:field-ttl")
VERSIONS = {"valkey-8.0": ("valkey", "8.0.1", b"REDIS0011"),
            "valkey-9": ("valkey", "9.1.2", b"VALKEY080"),
            "redis-7.0": ("redis", "7.0.15", b"REDIS0010")}


def _start_on(lab: Fleet, spec: str, rdb: Path):
    return lab.start(spec, extra_args=["--dir", str(rdb.parent), "--dbfilename", rdb.name])


@pytest.mark.parametrize("spec", list(VERSIONS))
@pytest.mark.parametrize("chunked", [False, True])
def test_redis8_file_down_versioned_for(lab: Fleet, redis8_source: Source, tmp_path: Path,
                                        spec: str, chunked: bool) -> None:
    flavor, version, header = VERSIONS[spec]
    out = tmp_path / f"{spec}.rdb"
    args = ["copy", "--from-rdb", str(redis8_source.rdb), "--to-rdb", str(out), "--to", flavor,
            "--target-version", version, "--format", "json", "--skip-unsupported"]
    if chunked:  # no RESTORE-style byte copies: every key re-encoded, big ones spooled
        args += ["--max-elements", "300", "--max-bytes", "1024"]
    res = run_cli(*args)
    data = json.loads(res.stdout)
    assert out.read_bytes()[:9] == header
    with out.open("rb") as fh:
        list(RdbReader(fh).records())  # our own reader accepts it (CRC included)
    target = _start_on(lab, spec, out)
    source = server_snapshot(redis8_source.server.endpoint)
    if spec != "valkey-9":
        assert res.code == 4 and data["failed"] == 1
        del source[FIELD_TTL_KEY]
    else:
        assert res.code == 0, res.stderr
    copied = server_snapshot(target.endpoint)
    if spec == "redis-7.0":  # streams written as type 19: no consumer active time
        source, copied = without_active_time(source), without_active_time(copied)
    assert differences(source, copied) == []
    assert target.client(0).execute_command("FUNCTION", "LIST")
    if chunked:
        assert data["transcoded"] >= 10  # big keys spooled and re-encoded


def test_valkey9_field_ttls_to_redis8(lab: Fleet, tmp_path: Path) -> None:
    """Valkey 9's type 22 re-encoded as Redis 7.4's type 24."""
    source = lab.start("valkey-9")
    seed(source.endpoint, keys=300, seed_value=8)
    source.client(0).save()
    out = tmp_path / "for-redis8.rdb"
    res = run_cli("copy", "--from-rdb", str(Path(source.directory) / "dump.rdb"), "--to-rdb",
                  str(out), "--to", "redis", "--target-version", "8.0.6")
    assert res.code == 0, res.stderr
    target = _start_on(lab, "redis-8", out)
    want = server_snapshot(source.endpoint)
    assert want[FIELD_TTL_KEY][3]
    assert differences(want, server_snapshot(target.endpoint)) == []


def test_existing_output_is_not_overwritten(redis8_source: Source, tmp_path: Path) -> None:
    out = tmp_path / "x.rdb"
    out.write_bytes(b"keep")
    res = run_cli("copy", "--from-rdb", str(redis8_source.rdb), "--to-rdb", str(out), "--to",
                  "valkey")
    assert res.code == 2 and "--overwrite" in res.stderr and out.read_bytes() == b"keep"
    res = run_cli("copy", "--from-rdb", str(redis8_source.rdb), "--to-rdb", str(out))
    assert res.code == 2 and "--to" in res.stderr
