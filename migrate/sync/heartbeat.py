"""The heartbeat: a key kvmigrate writes on the source and awaits on the target to measure
lag in milliseconds and to prove the target has caught up to a moment in time.

This is a write to the source. The key is ``__kvmigrate:heartbeat`` in database 0, a string
holding the Unix time in ms when it was written, with a one-hour expiry; verification ignores
it and the run deletes it when it ends. ``--no-heartbeat`` turns it off (lag in ms is then
unknown and catch-up is judged by replication offsets alone).
"""

from __future__ import annotations

import contextlib
import time
from collections import deque

import redis

from migrate.errors import ConnectError, KvmError
from migrate.verify.model import HEARTBEAT_KEY

EXPIRY_MS = 3_600_000


def now_ms() -> int:
    return int(time.time() * 1000)


class Heartbeat:
    """``resumes_from_successor``: the mode's ``--resume`` can continue from the source's
    successor after a failover (replica and native mode), which the stop's hint says."""

    def __init__(self, source: redis.Redis, target: redis.Redis, *,
                 resumes_from_successor: bool = False):
        self.source = source
        self.target = target
        self.resumes_from_successor = resumes_from_successor
        self.sent: deque[int] = deque(maxlen=600)

    def beat(self) -> int:
        stamp = now_ms()
        try:
            self.source.set(HEARTBEAT_KEY, stamp, px=EXPIRY_MS)
        except redis.ReadOnlyError as exc:  # a failover made it a replica of another
            raise KvmError(f"the source {_where(self.source)} is now a read-only replica "
                           f"(failed over?): it refused the heartbeat write ({exc})",
                           failover_hint(_primary_of(self.source),
                                         self.resumes_from_successor)) from None
        except redis.AuthenticationError as exc:
            raise _auth_failed("source", self.source, exc) from None
        self.sent.append(stamp)
        return stamp

    def seen(self) -> int | None:
        try:
            value = self.target.get(HEARTBEAT_KEY)
        except redis.AuthenticationError as exc:
            raise _auth_failed("target", self.target, exc) from None
        return int(value) if value and value.isdigit() else None

    def lag_ms(self) -> int | None:
        """How long the oldest beat the target has not shown yet has been waiting."""
        shown = self.seen()
        if not self.sent:
            return None
        waiting = [s for s in self.sent if shown is None or s > shown]
        return max(0, now_ms() - waiting[0]) if waiting else 0

    def await_beat(self, stamp: int, timeout: float, stop: object = None) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.seen()
            if shown is not None and shown >= stamp:
                return True
            if stop is not None and getattr(stop, "is_set", lambda: False)():
                return False
            time.sleep(0.05)
        return False

    def remove(self) -> None:
        with contextlib.suppress(redis.RedisError):
            self.source.delete(HEARTBEAT_KEY)


def failover_hint(primary: str | None, resumes: bool) -> str:
    """What to do once the source became a replica: resume from its new primary (the run's
    replication history continues there), or where the mode cannot, a new run from it."""
    which = f"its new primary ({primary})" if primary else "the new primary"
    if resumes:
        return (f"run again with --resume --source {which} and the same --state: it "
                "continues by partial resync")
    return (f"start a new run with --source {which}, another --state folder and "
            "--flush-target (this mode cannot resume from another source)")


def _primary_of(client: redis.Redis) -> str | None:
    """host:port of the primary the (now replica) source follows, from its INFO."""
    try:
        info = client.info("replication")
    except redis.RedisError:
        return None
    host, port = info.get("master_host"), info.get("master_port")
    return f"{host}:{port}" if host and port else None


def _where(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"


def _auth_failed(side: str, client: redis.Redis, exc: Exception) -> ConnectError:
    """A link made again was refused its AUTH: the password changed during the run."""
    return ConnectError(f"cannot authenticate to the {side} {_where(client)} any more (its "
                        f"password changed during the run?): {exc}",
                        f"give the {side}'s new password and run again with --resume")


class Mark:
    """A heartbeat written the first time :meth:`reached` is asked, then looked for on the
    target: True once the target shows it (the stream is applied at least up to that moment),
    and at once when there is no heartbeat (``--no-heartbeat``)."""

    def __init__(self, heartbeat: Heartbeat | None):
        self.heartbeat = heartbeat
        self.stamp: int | None = None

    def reached(self) -> bool:
        if self.heartbeat is None:
            return True
        if self.stamp is None:
            self.stamp = self.heartbeat.beat()
            return False
        return (self.heartbeat.seen() or 0) >= self.stamp
