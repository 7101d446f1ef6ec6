"""`kvmigrate copy --from-server`: a fresh snapshot over the replication protocol."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migrate.apply.snapshot import fetch_snapshot
from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.rdb import Entry, read_file
from tests.helpers import run_cli
from tests.rdb.snapshot import differences, server_snapshot, without_consumer_times


@pytest.mark.parametrize(("spec", "diskless"), [("redis-8", False), ("valkey-9", True),
                                                ("redis-7.0", True)])
def test_snapshot_over_sync(lab: Fleet, tmp_path: Path, spec: str, diskless: bool) -> None:
    source = lab.start(spec, password="pw-Secret1", extra_args=[
        "--repl-diskless-sync", "yes" if diskless else "no", "--repl-diskless-sync-delay", "0"])
    seed(source.endpoint, keys=600, seed_value=3)
    snap = fetch_snapshot(source.endpoint, tmp_path / "s.rdb")
    assert snap.diskless == diskless
    keys = [e for e in read_file(str(snap.path)) if isinstance(e, Entry) and e.final]
    assert len(keys) == 600


def test_copy_from_server(lab: Fleet) -> None:
    source = lab.start("valkey-9", password="pw-Secret1",
                       extra_args=["--repl-diskless-sync", "yes",
                                   "--repl-diskless-sync-delay", "0"])
    seed(source.endpoint, keys=800, seed_value=4)
    target = lab.start("valkey-9")
    res = run_cli("copy", "--from-server", source.url, "--target", target.url,
                  "--format", "json")
    assert res.code == 0, res.stderr
    assert "pw-Secret1" not in res.stdout + res.stderr
    assert json.loads(res.stdout)["keys"] == 800
    assert differences(without_consumer_times(server_snapshot(source.endpoint)),
                       without_consumer_times(server_snapshot(target.endpoint))) == []


def test_wrong_password_is_a_connect_error(lab: Fleet) -> None:
    source = lab.start("redis-8", password="right")
    target = lab.start("valkey-9")
    bad = source.url.replace("right", "wrong")
    res = run_cli("copy", "--from-server", bad, "--target", target.url)
    assert res.code == 3 and "wrong" not in res.stderr
