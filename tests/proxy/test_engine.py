"""The proxy engine on real servers: kvmigrate a replica of the source and the primary of
the target, under a writer process during and after the initial copy; refusals leave the
target untouched; a dropped link on either side is continued."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from migrate.errors import KvmError
from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.lab.server import ServerProcess
from migrate.proxy.diskless import SETTING as DISKLESS_LOAD
from migrate.proxy.engine import ProxySync
from migrate.state.ledger import Ledger
from migrate.sync.options import QuietObserver, SyncOptions
from migrate.sync.sides import Source, Target
from migrate.sync.status import StatusPublisher
from migrate.verify.runner import VerifyOptions, verify

WRITER = Path(__file__).resolve().parents[1] / "sync" / "writer.py"


@contextmanager
def _proxy(source: ServerProcess, target: ServerProcess, state: Path,
           heartbeat: bool = True, engine_class: type[ProxySync] = ProxySync,
           ) -> Iterator[ProxySync]:
    src, tgt = Source.connect(source.endpoint), Target.connect(target.endpoint)
    opts = SyncOptions(source=source.endpoint, target=target.endpoint,
                       to=tgt.identity.flavor, mode="proxy", heartbeat=heartbeat)
    with Ledger.open(state, run={"mode": "proxy"}, resume=False) as ledger, \
            StatusPublisher(ledger, QuietObserver(), None) as status:
        engine = engine_class(src, tgt, opts, ledger, status)
        try:
            yield engine
        finally:
            engine.close()


@contextmanager
def _writer(source: ServerProcess, tmp_path: Path) -> Iterator[Path]:
    stop, count = tmp_path / "stop", tmp_path / "count"
    proc = subprocess.Popen([sys.executable, str(WRITER), source.url, str(stop), str(count),
                             "--no-flush"])
    try:
        yield count
    finally:
        stop.touch()
        proc.wait(30)
    assert proc.returncode == 0


def _writes(count: Path) -> int:
    return int(count.read_text()) if count.exists() and count.read_text() else 0


def _in_sync(engine: ProxySync, source: ServerProcess, target: ServerProcess) -> None:
    deadline = time.monotonic() + 60
    report = None
    while time.monotonic() < deadline:
        engine.tick()
        report = verify(source.endpoint, target.endpoint, VerifyOptions(full=True))
        if report.ok:
            assert report.keys_checked > 1000
            return
    raise AssertionError(report.to_dict() if report else "no report")


def _sync_under_writes(source: ServerProcess, target: ServerProcess, tmp_path: Path) -> None:
    with _writer(source, tmp_path) as count, _proxy(source, target, tmp_path / "state") as eng:
        deadline = time.monotonic() + 30
        while _writes(count) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        eng.start()  # writes go on during the RDB transfer and the load
        eng.catch_up()
        before = _writes(count)
        while _writes(count) < before + 200 and time.monotonic() < deadline + 60:
            eng.tick()  # and after the initial copy
        info = target.client().info("replication")
        assert info["role"] == "slave" and info["master_link_status"] == "up"
        (tmp_path / "stop").touch()
        time.sleep(0.3)
        _in_sync(eng, source, target)
        assert eng.figures()["applied_offset"] > eng.generation.start_offset  # type: ignore


def test_redis70_to_valkey80_proxy(lab: Fleet, tmp_path: Path) -> None:
    source = lab.start("redis-7.0", password="pw-src")
    target = lab.start("valkey-8.0")
    seed(source.endpoint, keys=4000, seed_value=11)
    _sync_under_writes(source, target, tmp_path)


def test_redis8_to_valkey80_proxy(lab: Fleet, tmp_path: Path) -> None:
    source = lab.start("redis-8")
    target = lab.start("valkey-8.0")
    seed(source.endpoint, keys=4000, seed_value=12)
    source.client().delete("seed:hash:field-ttl")
    _sync_under_writes(source, target, tmp_path)


def test_redis8_to_valkey9_field_ttl_hashes(lab: Fleet, tmp_path: Path) -> None:
    source = lab.start("redis-8")
    target = lab.start("valkey-9")
    seed(source.endpoint, keys=4000, seed_value=13)
    client = source.client()
    for i in range(50):
        client.hset(f"fttl:{i}", mapping={"a": i, "b": i, "c": i})
        client.execute_command("HPEXPIRE", f"fttl:{i}", 3_600_000 + i, "FIELDS", 2, "a", "b")
    _sync_under_writes(source, target, tmp_path)
    tclient = target.client()
    ttl = tclient.execute_command("HPTTL", "fttl:7", "FIELDS", 3, "a", "b", "c")
    assert ttl[0] > 3_000_000 and ttl[1] > 3_000_000 and ttl[2] == -1


def test_vector_set_refused_before_the_target_is_touched(lab: Fleet, tmp_path: Path) -> None:
    source = lab.start("redis-8")
    target = lab.start("valkey-9")
    seed(source.endpoint, keys=500, seed_value=14, profile="strings")
    source.client().execute_command("VADD", "vec", "VALUES", 3, 0.1, 0.2, 0.3, "item1")
    with _proxy(source, target, tmp_path / "state") as eng, \
            pytest.raises(KvmError, match="module value"):
        eng.start()
    info = target.client().info("replication")
    assert info["role"] == "master" and target.client().dbsize() == 0


def test_target_link_dropped_resumes_from_the_proxy(lab: Fleet, tmp_path: Path) -> None:
    source = lab.start("redis-7.0")
    target = lab.start("valkey-8.0")
    seed(source.endpoint, keys=2000, seed_value=15, profile="strings")
    with _writer(source, tmp_path) as count, _proxy(source, target, tmp_path / "state") as eng:
        eng.start()
        eng.catch_up()
        assert eng.server is not None
        target.client().execute_command("CLIENT", "KILL", "TYPE", "master")
        before = _writes(count)
        deadline = time.monotonic() + 60
        while (eng.server.continued < 1 or _writes(count) < before + 200) and \
                time.monotonic() < deadline:
            eng.tick()
        assert eng.server.continued == 1 and eng.server.connections == 2
        (tmp_path / "stop").touch()
        time.sleep(0.3)
        _in_sync(eng, source, target)


def test_source_link_dropped_partial_resync(lab: Fleet, tmp_path: Path) -> None:
    source = lab.start("redis-8")
    target = lab.start("valkey-8.0")
    seed(source.endpoint, keys=2000, seed_value=16, profile="strings")
    with _writer(source, tmp_path) as count, _proxy(source, target, tmp_path / "state") as eng:
        eng.start()
        eng.catch_up()
        source.client().execute_command("CLIENT", "KILL", "TYPE", "replica")
        before = _writes(count)
        deadline = time.monotonic() + 60
        while (eng.link.partial_resyncs < 1 or _writes(count) < before + 200) and \
                time.monotonic() < deadline:
            eng.tick()
        assert eng.link.partial_resyncs == 1 and eng.generation is not None
        assert eng.link.generation is eng.generation  # no full resync
        (tmp_path / "stop").touch()
        time.sleep(0.3)
        _in_sync(eng, source, target)




def test_nothing_is_applied_until_the_target_loaded_the_rdb(lab: Fleet,
                                                            tmp_path: Path) -> None:
    """The target was sent the whole RDB but is still loading it (slowly: key-load-delay):
    the applied offset, which "caught up" and a cut-over read, is not yet the RDB's own
    offset; it is once the target acknowledges. Before, it was the RDB's offset from the
    start: with an idle source and --no-heartbeat a run said "caught up" and exited 0 with
    413,298 of 1,000,000 keys loaded (seen at 1,000,000 keys)."""
    source = lab.start("redis-7.0", extra_args=["--repl-diskless-sync-delay", "0"])
    target = lab.start("valkey-8.0", extra_args=["--key-load-delay", "500"])
    seed(source.endpoint, keys=20000, profile="strings")
    # a replication history, so that the RDB's offset is not 0
    other = lab.start("redis-7.0")
    other.client().replicaof("127.0.0.1", source.port)
    deadline = time.monotonic() + 60
    while other.client().info("replication").get("master_link_status") != "up":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    source.client().set("history", "1")  # moves the offset: there is a backlog now
    while other.client().get("history") is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    other.client().replicaof("no", "one")
    with _proxy(source, target, tmp_path / "state", heartbeat=False) as engine:
        engine.start()
        assert engine.server is not None and engine.generation is not None
        start = engine.generation.start_offset
        assert start > 0
        while not engine.server.linked.is_set():  # the whole RDB sent
            assert time.monotonic() < deadline
            engine.advance()
            time.sleep(0.01)
        assert engine.figures()["applied_offset"] < start  # sent, not loaded (>= 10 s)
        engine.catch_up()
        assert engine.figures()["applied_offset"] >= start


def _slow_loader(lab: Fleet, per_key_us: int) -> ServerProcess:
    """A Valkey 8.0 target that takes ``per_key_us`` per key it loads and answers INFO while
    it loads; its own repl-diskless-load is "disabled"."""
    return lab.start("valkey-8.0", extra_args=[
        "--repl-diskless-load", "disabled", "--key-load-delay", str(per_key_us),
        "--loading-process-events-interval-bytes", "1024"])


def _until_loading(target: ServerProcess, loading: int, deadline: float) -> None:
    while target.client().info("persistence")["loading"] != loading:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_source_at_offset_0_is_caught_up_only_once_the_target_loaded(
        lab: Fleet, tmp_path: Path) -> None:
    """A source that never had a replica takes its RDB at offset 0, which an applied offset
    of 0 already reaches: "caught up" waits for the target's first ACK after the full
    resync (its load done) all the same. Before, with an idle source and --no-heartbeat, a
    run exited 0 with 497,957 of 1,000,000 keys loaded."""
    # no PING to replicas either, which would move the offset
    source = lab.start("redis-7.0", extra_args=["--repl-diskless-sync-delay", "0",
                                                "--repl-ping-replica-period", "3600"])
    target = _slow_loader(lab, 200)
    seed(source.endpoint, keys=10000, profile="strings")
    keys = source.client().dbsize()
    with _proxy(source, target, tmp_path / "state", heartbeat=False) as engine:
        engine.start()
        assert engine.generation is not None and engine.generation.start_offset == 0
        engine.catch_up()
        assert int(source.client().info("replication")["master_repl_offset"]) == 0
        assert target.client().info("persistence")["loading"] == 0
        assert target.client().dbsize() == keys


class _Parsing(ProxySync):
    """Every record parsed first: the target gets the RDB length-prefixed ($<len>), once
    it is complete, rather than EOF-marked as it arrives."""

    def _parse_reason(self) -> str | None:
        return "asked for by the test"


def _load_setting(server: ServerProcess) -> str:
    return str(server.client().config_get(DISKLESS_LOAD)[DISKLESS_LOAD])


@pytest.mark.parametrize("spec", ["valkey-8.0", "valkey-8.1", "valkey-9", "redis-7.0",
                                  "redis-8"])
@pytest.mark.parametrize("engine_class", [ProxySync, _Parsing],
                         ids=["eof-marked", "length-prefixed"])
def test_the_target_loads_as_the_rdb_arrives_and_gets_its_setting_back(
        lab: Fleet, tmp_path: Path, spec: str, engine_class: type[ProxySync]) -> None:
    source = lab.start("redis-7.0", extra_args=["--repl-diskless-sync-delay", "0"])
    target = lab.start(spec, extra_args=["--repl-diskless-load", "disabled"])
    seed(source.endpoint, keys=2000, seed_value=17)
    with _proxy(source, target, tmp_path / "state", engine_class=engine_class) as engine:
        engine.start()
        engine.catch_up()
        assert _load_setting(target) == "disabled"  # back once the target loaded
        _in_sync(engine, source, target)
    log = Path(target.log_path).read_text()
    assert "sync: receiving" in log and " to parser" in log  # not "to disk"
    assert "to disk" not in log
    assert _load_setting(target) == "disabled"


def test_a_run_stopped_while_the_target_loads_gives_its_setting_back(
        lab: Fleet, tmp_path: Path) -> None:
    """The run ends (stopped, or failed) while the target still loads the RDB as it arrives:
    the target drops what it loaded (it is empty again) and has its own setting back."""
    source = lab.start("redis-7.0", extra_args=["--repl-diskless-sync-delay", "0"])
    target = _slow_loader(lab, 200)
    seed(source.endpoint, keys=20000, profile="strings")
    deadline = time.monotonic() + 60
    with _proxy(source, target, tmp_path / "state", heartbeat=False) as engine:
        engine.start()
        _until_loading(target, 1, deadline)
        assert _load_setting(target) == "on-empty-db"
    assert _load_setting(target) == "disabled"
    _until_loading(target, 0, deadline)
    assert target.client().dbsize() == 0


def test_a_start_stopped_mid_transfer_gives_the_target_back_once_it_dropped_the_load(
        lab: Fleet, tmp_path: Path) -> None:
    """Stopped while the source still sends its RDB and the target, loading it as it
    arrives, is behind: it drops what it loaded and is made a primary again (it answers
    LOADING until it dropped it), empty, with its own setting back."""
    source = lab.start("redis-7.0", extra_args=["--repl-diskless-sync-delay", "0",
                                                "--rdb-key-save-delay", "100"])
    target = _slow_loader(lab, 1000)
    seed(source.endpoint, keys=40000, profile="strings")
    deadline = time.monotonic() + 60
    with _proxy(source, target, tmp_path / "state", heartbeat=False) as engine:
        stopped: list[BaseException] = []

        def start() -> None:
            try:
                engine.start()
            except BaseException as exc:  # looked at below
                stopped.append(exc)

        started = threading.Thread(target=start)
        started.start()
        _until_loading(target, 1, deadline)
        engine.opts.stop.set()
        started.join(60)
        assert [type(e) for e in stopped] == [KeyboardInterrupt]
        assert target.client().info("replication")["role"] == "master"
    assert target.client().dbsize() == 0
    assert _load_setting(target) == "disabled"


def test_a_target_with_keys_is_left_loading_from_disk(lab: Fleet, tmp_path: Path) -> None:
    """A target that holds keys (the sync's --replace-target) would not load as the RDB
    arrives anyway (on-empty-db): its setting is not touched, and it loads from disk."""
    source = lab.start("redis-7.0", extra_args=["--repl-diskless-sync-delay", "0"])
    target = lab.start("valkey-8.0", extra_args=["--repl-diskless-load", "disabled"])
    seed(source.endpoint, keys=2000, seed_value=18, profile="strings")
    target.client().set("replaced", "by the load")
    with _proxy(source, target, tmp_path / "state") as engine:
        engine.start()
        assert _load_setting(target) == "disabled"
        engine.catch_up()
        _in_sync(engine, source, target)
    assert " to disk" in Path(target.log_path).read_text()
    assert target.client().get("replaced") is None


def test_writes_queued_behind_an_eof_marked_rdb_reach_a_target_loading_as_it_arrives(
        lab: Fleet, tmp_path: Path) -> None:
    """The source's RDB arrives slowly while a writer runs, so the stream has piled up
    when the proxy sends the end mark. A target loading from the socket reads ahead of the
    mark and drops what it read past it: like a primary's own diskless transfer, nothing
    of the stream is sent until the target acknowledged (seen: writes lost, the target
    stuck behind the source)."""
    source = lab.start("redis-7.0", extra_args=["--repl-diskless-sync-delay", "0",
                                                "--rdb-key-save-delay", "100"])
    target = lab.start("valkey-8.0")
    seed(source.endpoint, keys=3000, seed_value=19, profile="strings")
    _sync_under_writes(source, target, tmp_path)
