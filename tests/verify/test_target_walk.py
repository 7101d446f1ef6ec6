"""``verify --full`` walks the target for keys the source lacks, unless that is proven
needless: neither server wrote, expired, evicted, saved or loaded anything during the walk
(their INFO write marks did not move), every source key was found on the target, the source
held none of kvmigrate's own keys, and both databases hold as many keys. Keys only on the
target are reported whichever way the counts fall."""

from __future__ import annotations

import time

import pytest

from migrate.lab.fleet import Fleet
from migrate.lab.server import ServerProcess
from migrate.protocol.rawconn import RawConn
from migrate.verify.runner import VerifyOptions, verify, write_marks
from tests.verify.replicate import replicate

FAST = dict(lag_window_s=0.1, rechecks=1)


@pytest.fixture
def pair(lab: Fleet) -> tuple[ServerProcess, ServerProcess]:
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    c = source.client()
    for db in (0, 1):
        c.execute_command("SELECT", db)
        c.mset({f"k{db}:{i}": i for i in range(500)})
    replicate(source, target)
    return source, target


def kinds(report) -> dict[str, str]:
    return {m.to_dict()["key"]: m.kind for m in report.mismatches}


def target_scans(target: ServerProcess) -> int:
    return int(target.client().info("commandstats").get("cmdstat_scan", {}).get("calls", 0))


def test_an_unwritten_copy_is_not_walked_twice(pair: tuple[ServerProcess, ServerProcess]) \
        -> None:
    source, target = pair
    report = verify(source.endpoint, target.endpoint, VerifyOptions(full=True, **FAST))
    assert report.ok and report.keys_checked == 1000, report.to_dict()
    assert target_scans(target) == 0


def test_a_key_renamed_on_the_target_is_missing_and_extra(
        pair: tuple[ServerProcess, ServerProcess]) -> None:
    source, target = pair
    target.client().rename("k0:7", "k0:renamed")  # the counts stay equal
    report = verify(source.endpoint, target.endpoint, VerifyOptions(full=True, **FAST))
    assert kinds(report) == {"k0:7": "missing", "k0:renamed": "extra"}
    assert target_scans(target) > 0


def test_a_target_key_in_place_of_one_of_kvmigrates_is_extra(
        pair: tuple[ServerProcess, ServerProcess]) -> None:
    """kvmigrate's own keys on the source are not compared: the counts match a target key
    in the place of one, so the target is walked."""
    source, target = pair
    source.client().set("__kvmigrate:other", 1)
    target.client().set("k0:not-on-the-source", 1)
    report = verify(source.endpoint, target.endpoint, VerifyOptions(full=True, **FAST))
    assert kinds(report) == {"k0:not-on-the-source": "extra"}


@pytest.mark.parametrize("spec", ["redis-7.0", "valkey-8.0"])
def test_write_marks_move_with_a_write_an_expiry_and_a_save(lab: Fleet, spec: str) -> None:
    server = lab.start(spec)
    c = server.client()
    with RawConn(server.endpoint) as conn:
        marks = write_marks(conn)
        assert marks is not None and write_marks(conn) == marks
        c.get("nothing")
        assert write_marks(conn) == marks  # a read writes nothing
        c.set("k", "v")
        assert write_marks(conn) != marks
        c.set("short", "v", px=1)
        marks = write_marks(conn)
        deadline = time.monotonic() + 10
        while write_marks(conn) == marks and time.monotonic() < deadline:
            c.exists("short")  # expires it on access, if the server did not already
        assert write_marks(conn) != marks
        marks = write_marks(conn)
        c.save()
        assert write_marks(conn) != marks
