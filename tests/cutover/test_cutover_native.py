"""Cut-over of a native replication redis-7.0 -> valkey-8.0 on real lab servers."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from migrate.cutover.fence import is_fenced
from migrate.cutover.link import NativeLink
from migrate.cutover.run import Cutover, CutoverFailed, CutoverOptions
from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.lab.server import ServerProcess


def replicate(source: ServerProcess, target: ServerProcess, timeout: float = 30) -> NativeLink:
    source.client().config_set("repl-diskless-sync-delay", 0)
    target.client().execute_command("REPLICAOF", "127.0.0.1", source.port)
    link = NativeLink(source.client(), target.client())
    deadline = time.monotonic() + timeout
    while True:
        state = link.state()
        if state.up and state.lag_bytes == 0:
            return link
        assert time.monotonic() < deadline, f"replication did not converge: {state}"
        time.sleep(0.05)


@dataclass
class Ack:
    key: str
    value: int
    server: str
    at: float


@dataclass
class FailoverWriter:
    """Writes w:<n> = n to the primary; on NOREPLICAS or READONLY switches to the other server
    and writes again, as a client with failover logic does."""

    primary: ServerProcess
    secondary: ServerProcess
    acks: list[Ack] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def wait_acks(self, count: int, on: str | None = None, timeout: float = 60) -> None:
        """Wait until ``count`` writes were acknowledged (by server ``on``: "old" or "new",
        when given): writes before and after a switch, on a condition, not a sleep."""
        deadline = time.monotonic() + timeout
        while sum(1 for a in list(self.acks) if on is None or a.server == on) < count:
            assert time.monotonic() < deadline, f"{count} writes acknowledged by {on or 'any'}"
            assert not self.stop.is_set()
            time.sleep(0.01)

    def run(self) -> None:
        servers = {"old": self.primary.client(), "new": self.secondary.client()}
        current = "old"
        n = 0
        while not self.stop.is_set():
            try:
                servers[current].set(f"w:{n}", n)
                self.acks.append(Ack(f"w:{n}", n, current, time.time()))
                n += 1
            except redis.ResponseError as exc:
                self.errors.append(f"{current}: {exc}")
                # redis-py raises ReadOnlyError for READONLY, its message without the code
                if current == "old" and ("NOREPLICAS" in str(exc) or "READONLY" in str(exc)
                                         or isinstance(exc, redis.ReadOnlyError)):
                    current = "new"
                else:
                    time.sleep(0.01)
            time.sleep(0.001)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        return thread


def test_cutover_under_writes_loses_nothing_and_fences_the_old_primary(lab: Fleet) -> None:
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    seed(source.endpoint, keys=3000)
    link = replicate(source, target)
    writer = FailoverWriter(source, target)
    thread = writer.start()
    writer.wait_acks(50)
    result = Cutover(source.endpoint, target.endpoint, link,
                     CutoverOptions(max_pause_ms=2000)).run()
    writer.wait_acks(50, on="new")
    writer.stop.set()
    thread.join(10)

    assert result.ok and result.promoted_at is not None
    assert result.paused_ms is not None and 0 < result.paused_ms < 2000
    assert [s.name for s in result.steps if s.status == "done"] == [
        "precheck", "pause", "final-offset", "catch-up", "promote", "fence", "offset-check",
        "unpause", "drop-heartbeat"]  # the heartbeat's DEL on the target: out of the pause
    assert not result.late_write_bytes and result.took_effect
    # the target is a primary now, the old primary refuses writes loudly
    assert target.client().info("replication")["role"] == "master"
    assert is_fenced(source.client())
    with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
        source.client().set("late-write", 1)
    # every acknowledged write, before and after the cut-over, is on the new primary
    old = [a for a in writer.acks if a.server == "old"]
    new = [a for a in writer.acks if a.server == "new"]
    assert old and new, (len(old), len(new), writer.errors[:3])
    tc = target.client()
    values = tc.mget([a.key for a in writer.acks])
    missing = [a.key for a, v in zip(writer.acks, values, strict=True)
               if v != str(a.value).encode()]
    assert not missing, missing[:10]
    # no write got OK from the old primary after promotion
    assert max(a.at for a in old) < result.promoted_at
    assert any("NOREPLICAS" in e for e in writer.errors)
    # the seeded data made it too
    assert tc.get("seed:string:int") == b"1234567"


def test_failure_before_promotion_unpauses_and_unfences_the_source(lab: Fleet) -> None:
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    link = replicate(source, target)

    def target_goes_away() -> tuple[bool, str]:
        target.stop()  # the target becomes unreachable right before promotion
        return True, "sample ok"

    with pytest.raises(CutoverFailed) as info:
        Cutover(source.endpoint, target.endpoint, link, CutoverOptions(max_pause_ms=3000),
                final_check=target_goes_away).run()
    assert "aborted before promotion" in info.value.one_line()
    src = source.client(decode_responses=True)
    assert not is_fenced(src)
    started = time.monotonic()
    assert src.set("still-serving", 1)  # not paused, not fenced
    assert time.monotonic() - started < 1.0
    assert src.config_get("min-replicas-to-write")["min-replicas-to-write"] == "0"


def test_postpone_file_holds_the_cutover(lab: Fleet, tmp_path: Path) -> None:
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    link = replicate(source, target)
    hold = tmp_path / "postpone"
    hold.touch()
    messages: list[str] = []
    outcome: dict[str, object] = {}

    def run() -> None:
        outcome["result"] = Cutover(source.endpoint, target.endpoint, link,
                                    CutoverOptions(postpone_file=hold),
                                    notify=messages.append).run()

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 30
    while not any("postponed" in m for m in list(messages)):  # waits on the marker file
        assert thread.is_alive() and time.monotonic() < deadline, messages
        time.sleep(0.05)
    assert thread.is_alive()
    assert target.client().info("replication")["role"] == "slave"  # not promoted yet
    assert source.client().set("during-postpone", 1)  # source serving normally
    hold.unlink()
    thread.join(30)
    assert not thread.is_alive()
    assert outcome["result"].ok  # type: ignore[attr-defined]
    assert target.client().info("replication")["role"] == "master"


def test_refuses_when_the_target_is_not_replicating(lab: Fleet) -> None:
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    link = NativeLink(source.client(), target.client())
    with pytest.raises(CutoverFailed, match="link down"):
        Cutover(source.endpoint, target.endpoint, link, CutoverOptions()).run()
    assert not is_fenced(source.client())


def test_dry_run_changes_nothing(lab: Fleet) -> None:
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    link = replicate(source, target)
    before = source.client().config_get("*")
    result = Cutover(source.endpoint, target.endpoint, link,
                     CutoverOptions(dry_run=True, max_pause_ms=1500)).run()
    assert result.ok and result.dry_run and result.paused_ms is None
    assert result.plan[0] == "source: CLIENT PAUSE 1500 WRITE"
    assert "target: REPLICAOF NO ONE (on the target)" in result.plan
    assert source.client().config_get("*") == before
    assert target.client().info("replication")["role"] == "slave"
    assert source.client().set("after-dry-run", 1)
