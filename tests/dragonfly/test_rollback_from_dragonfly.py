"""`rollback` from a real Dragonfly (the lab's v1.40.1) back to Redis 7.0: the window path
(Dragonfly's writes paused for the copy) under a failover writer, and the two ways that cannot
work refused with the reason: native reverse replication (Dragonfly serves no Redis replica)
and a logical reverse sync (no PSYNC to follow; keyspace notifications only for expiry,
shown on the real server)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from migrate.cutover.fence import fence, is_fenced
from migrate.cutover.rollback import rollback
from migrate.cutover.run import CutoverOptions
from migrate.errors import UsageError
from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.verify.runner import VerifyOptions, verify
from tests.cutover.test_cutover_native import FailoverWriter


def test_dragonfly_has_keyspace_notifications_for_expiry_only(dragonfly_installed: object,
                                                             lab: Fleet) -> None:
    """Why there is no scan-mode (notification-driven) reverse sync from Dragonfly."""
    server = lab.start("dragonfly")
    client = server.client()
    with pytest.raises(redis.ResponseError, match="can not be set"):
        client.config_set("notify-keyspace-events", "KEA")
    assert client.config_set("notify-keyspace-events", "Ex")
    pubsub = client.pubsub()
    pubsub.psubscribe("__key*@*__:*")
    client.set("k", "v")
    client.delete("k")
    client.set("short", "v", px=50)
    seen: list[bytes] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and b"short" not in seen:
        message = pubsub.get_message(timeout=0.2)
        if message and message["type"] == "pmessage":
            seen.append(message["data"])
        client.exists("short")  # an access expires the key
    pubsub.close()
    assert seen == [b"short"]  # the expiry, and no event for SET or DEL


def test_window_rollback_from_dragonfly(dragonfly_installed: object, lab: Fleet,
                                        tmp_path: Path) -> None:
    old, new = lab.start("redis-7.0"), lab.start("dragonfly")
    seed(new.endpoint, keys=1500)
    record = fence(old.client())
    writer = FailoverWriter(new, old)  # writes to Dragonfly until it is fenced
    thread = writer.start()
    writer.wait_acks(50)  # writes on Dragonfly before the rollback
    result = rollback(old.endpoint, new.endpoint, CutoverOptions(), fence_record=record,
                      state_root=tmp_path, path="auto", window_ms=30000)
    if result.ok:
        writer.wait_acks(30, on="new")  # and on the old primary after it
    writer.stop.set()
    thread.join(10)
    assert result.ok and result.paused_ms is not None and result.paused_ms < 30000
    oc = old.client()
    assert oc.info("replication")["role"] == "master"
    assert not is_fenced(oc)
    with pytest.raises(redis.ResponseError, match="read only replica"):
        new.client().set("after-rollback", "1")  # Dragonfly is fenced as a replica
    on_new = [a for a in writer.acks if a.server == "old"]
    after = [a for a in writer.acks if a.server == "new"]
    assert on_new and after, writer.errors[:3]
    values = oc.mget([a.key for a in writer.acks])
    lost = [a.key for a, v in zip(writer.acks, values, strict=True) if v != str(a.value).encode()]
    assert not lost, lost[:10]  # zero acknowledged writes lost
    assert max(a.at for a in on_new) < result.promoted_at  # type: ignore[operator]
    oc.delete(*[a.key for a in after])
    report = verify(new.endpoint, old.endpoint, VerifyOptions(full=True))
    assert report.ok and report.keys_checked > 1000, report.mismatches[:5]


@pytest.mark.parametrize(("path", "said"), [
    ("native", "Dragonfly cannot be a primary for Redis or Valkey replicas"),
    ("logical", "the logical path follows the new primary with PSYNC"),
    ("auto", "needs a write window"),
])
def test_what_cannot_work_from_dragonfly_is_refused(dragonfly_installed: object, lab: Fleet,
                                                    tmp_path: Path, path: str,
                                                    said: str) -> None:
    old, new = lab.start("redis-7.0"), lab.start("dragonfly")
    record = fence(old.client())
    new.client().set("k", "v")
    with pytest.raises(UsageError) as info:
        rollback(old.endpoint, new.endpoint, CutoverOptions(), fence_record=record,
                 state_root=tmp_path, path=path)
    assert said in info.value.one_line()
    assert is_fenced(old.client()) and old.client().dbsize() == 0  # nothing was done
    assert new.client().set("still-writable", "1")
