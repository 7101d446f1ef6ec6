"""Pure logic of sync and verify: the ledger's lock and resume rules, option parsing, the
stream translator, the glob matcher and the notification check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from migrate.errors import KvmError, UsageError
from migrate.keyglob import glob_to_regex as _glob_to_regex
from migrate.state.ledger import Ledger
from migrate.sync.engine import Worker, join_all
from migrate.sync.replay import Translator
from migrate.sync.rules import ChangeRefused
from migrate.sync.scan import notify_problem
from migrate.verify.runner import parse_db_map

RUN = {"source": "redis://a:1", "target": "redis://b:2", "mode": "scan"}


def test_ledger_records_phases_and_resumes(tmp_path: Path) -> None:
    with Ledger.open(tmp_path, run=RUN, resume=False) as ledger:
        assert (tmp_path / "kvmigrate.pid").read_text().strip() == str(os.getpid())
        with ledger.phase("initial-copy") as counters:
            counters["keys"] = 5
        with pytest.raises(RuntimeError), ledger.phase("catch-up"):
            raise RuntimeError("boom")
    assert not (tmp_path / "kvmigrate.pid").exists()
    data = json.loads((tmp_path / "ledger.json").read_text())
    assert [(p["name"], p["status"]) for p in data["phases"]] == [
        ("initial-copy", "done"), ("catch-up", "failed")]
    with pytest.raises(UsageError, match="already holds the ledger"):
        Ledger.open(tmp_path, run=RUN, resume=False)
    with pytest.raises(UsageError, match="another run"):
        Ledger.open(tmp_path, run={**RUN, "mode": "native"}, resume=True)
    with Ledger.open(tmp_path, run=RUN, resume=True) as ledger:
        assert ledger.done("initial-copy") and not ledger.done("catch-up")
        assert ledger.data["resumed"] == 1
    with pytest.raises(UsageError, match="nothing to resume"):
        Ledger.open(tmp_path / "empty", run=RUN, resume=True)


def test_ledger_lock_refuses_a_live_owner_and_takes_a_stale_one(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / "kvmigrate.pid").write_text(f"{holder.pid}\n")
        with pytest.raises(KvmError, match=f"pid {holder.pid}"):
            Ledger.open(tmp_path, run=RUN, resume=False)
    finally:
        holder.kill()
        holder.wait()
    with Ledger.open(tmp_path, run=RUN, resume=False):  # its process is gone: stale
        pass


def test_parse_db_map() -> None:
    assert parse_db_map("0:1, 2:3") == {0: 1, 2: 3}
    assert parse_db_map(None) == {}
    for bad in ("0-1", "a:1", "0:1,0:2", "0:1,1:1"):
        with pytest.raises(UsageError):
            parse_db_map(bad)
    from migrate.apply.copy import parse_db_map as copy_parse

    assert copy_parse is parse_db_map  # one rule for copy, sync and verify
    with pytest.raises(UsageError, match="overwrite each other"):
        copy_parse("0:3,1:3")  # copy used to merge them without a word
    assert parse_db_map("1:4").to(1) == 4 and parse_db_map("1:4").back(4) == 1


def test_translator() -> None:
    t = Translator(None, {0: 4}, db=0)
    assert t([b"SELECT", b"0"]) == [("SELECT", 4)]
    assert t([b"PING"]) == [] and t([b"REPLCONF", b"GETACK", b"*"]) == []
    assert t([b"SWAPDB", b"0", b"1"]) == [("SWAPDB", 4, 1)]
    assert t([b"MOVE", b"k", b"0"]) == [("MOVE", b"k", 4)]
    with pytest.raises(ChangeRefused) as info:  # a field TTL the target cannot hold: a stop
        t([b"HPEXPIREAT", b"h", b"1", b"FIELDS", b"1", b"f"])
    assert info.value.exit_code == 4 and "HPEXPIREAT on key 'h' in db 0" in str(info.value)
    lossy = Translator(None, {}, allow_loss=frozenset({"field-ttl"}))
    assert lossy([b"HPEXPIREAT", b"h", b"1", b"FIELDS", b"1", b"f"]) == []
    assert lossy.dropped == {"HPEXPIREAT": 1}
    # value-carrying field-TTL commands keep their values on a target without field TTLs
    assert t([b"HSETEX", b"h", b"KEEPTTL", b"FIELDS", b"1", b"f", b"3.5"]) == [
        (b"HSET", b"h", b"f", b"3.5")]
    assert lossy([b"HSETEX", b"h", b"PXAT", b"9", b"FIELDS", b"1", b"f", b"v"]) == [
        (b"HSET", b"h", b"f", b"v")]
    assert t([b"HGETDEL", b"h", b"FIELDS", b"2", b"a", b"b"]) == [(b"HDEL", b"h", b"a", b"b")]
    assert t([b"HPERSIST", b"h", b"FIELDS", b"1", b"a"]) == []
    assert Translator("hpexpireat", {})([b"HPEXPIREAT", b"h", b"1"]) == [
        (b"HPEXPIREAT", b"h", b"1")]
    df = Translator("hexpire", {})([b"HPEXPIREAT", b"h", b"99999999999999", b"FIELDS", b"1",
                                    b"f"])
    assert df[0][0] == "HEXPIRE" and df[0][2] > 0
    assert t([b"SET", b"k", b"v"]) == [(b"SET", b"k", b"v")]


def test_glob() -> None:
    import re

    rx = re.compile(_glob_to_regex("user:[ab]?*"))
    assert rx.fullmatch(b"user:a1xyz") and not rx.fullmatch(b"user:c1")
    assert re.compile(_glob_to_regex("a.b")).fullmatch(b"a.b")
    assert not re.compile(_glob_to_regex("a.b")).fullmatch(b"axb")


def test_notify_problem() -> None:
    assert notify_problem("KA") is None and notify_problem("AKE") is None
    assert "no K or E" in (notify_problem("") or "")
    assert "missing classes" in (notify_problem("Kg$") or "")


def test_worker_keeps_what_its_task_raised() -> None:
    def fail(_: threading.Event) -> None:
        raise ValueError("bad value")

    worker = Worker("w", "the task", fail)
    worker.start()
    assert worker.join() and not worker.alive
    with pytest.raises(KvmError, match="the task failed: bad value"):
        worker.check()


def test_join_all_reports_a_task_that_does_not_end() -> None:
    release = threading.Event()
    quick = Worker("quick", "the quick task", lambda _: None)
    stuck = Worker("stuck", "the stuck task", lambda _: release.wait())
    quick.start()
    stuck.start()
    join_all([stuck, quick], 1.0)
    quick.check()  # ended: nothing to raise
    assert stuck.alive
    with pytest.raises(KvmError, match="the stuck task did not stop within 1 s"):
        stuck.check()
    release.set()
    assert stuck.join(10.0)
