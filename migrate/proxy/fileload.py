"""``copy --from-rdb`` loaded by the target itself: kvmigrate serves the file as a primary
would, the target (sent ``REPLICAOF``) loads it natively, then it is detached
(``REPLICAOF NO ONE``).

Safety comes first, speed from overlapping the work:

1. Before the target is touched, :meth:`FileLoad.refusal` checks what is cheap: the target
   (an empty single Redis or Valkey primary, no TLS, no maxmemory, reachable on loopback or
   through ``--listen``) and the file: a version the target loads as it is, written by a
   released server (its ``redis-ver`` / ``valkey-ver`` AUX field names a version that writes
   this RDB version: a development build's or another tool's file takes the record path),
   and a checksum, verified over the whole file (in C) before a byte is sent: a server
   exits when a file it loads turns out to be corrupt.
2. The target then loads the file as it arrives (``repl-diskless-load on-empty-db`` for the
   duration, :mod:`migrate.proxy.diskless`), and is sent only what the walk
   (:mod:`migrate.rdb.walk`) has stepped over: a key the target cannot load as it is
   (module values, field-TTL hashes, any type the target lacks), an empty key or a damaged
   container stops the transfer before the target sees it. The link is then cut, which the
   target takes as a lost connection (it drops what it had and stays empty); the copy goes
   record by record instead (:class:`NotLoaded`).
3. Once loaded and detached, the target's key counts per database are checked against the
   walk's.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import redis

from migrate.apply.copy import NotLoaded
from migrate.apply.target import STREAM_TYPES, Target
from migrate.compat.rdb import max_rdb_loadable, rdb_version_written
from migrate.endpoint import Endpoint
from migrate.errors import KvmError
from migrate.proxy.diskless import loading_while_received
from migrate.proxy.primary import ReplicaServer, parse_listen
from migrate.rdb import RdbFormatError, RdbReader
from migrate.rdb.crc64 import crc64
from migrate.rdb.records import Aux, Producer
from migrate.rdb.summary import RdbSummary
from migrate.rdb.walk import NotWalked, walk
from migrate.serverinfo import ServerIdentity, parse_version

CONNECT_S = 30.0  # the target has this long to connect to the listener
POLL_S = 0.01
WAIT_S = 0.2  # how often the target's INFO is read while it loads
IDLE_S = 10.0  # connected, but neither receiving nor loading the RDB: it failed
SETTLE_S = 30.0  # after a transfer cut short: the target drops what it had within this
CRC_CHUNK = 8 << 20
WILDCARD = ("0.0.0.0", "::", "")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback
                       for info in socket.getaddrinfo(host, None))
        except (OSError, ValueError):
            return False


def producer(path: Path) -> Producer:
    """The file's header and the AUX fields that open it (redis-ver, valkey-ver)."""
    with path.open("rb") as fh:
        reader = RdbReader(fh, keep_raw=False)
        for rec in reader.records():
            if not isinstance(rec, Aux):
                break
        return reader.producer


def verify_checksum(path: Path, progress: Callable[[int], None]) -> None:
    """The trailing CRC64 matches the file (RdbFormatError otherwise); the caller knows it is
    not zero (written without one)."""
    size = path.stat().st_size
    crc = 0
    with path.open("rb") as fh:
        done = 0
        while done < size - 8:
            chunk = fh.read(min(CRC_CHUNK, size - 8 - done))
            if not chunk:
                break
            crc = crc64(chunk, crc)
            done += len(chunk)
            progress(done)
        stored = int.from_bytes(fh.read(8), "little")
    if stored != crc:
        raise RdbFormatError(size - 8, f"bad checksum: the file says {stored:016x}, its "
                                       f"content hashes to {crc:016x}")


def file_refusal(path: Path, target: Target) -> str | None:
    try:
        p = producer(path)
    except RdbFormatError:
        return "the file's header does not read"  # the record path names the defect
    if p.rdb_version < 5:
        return f"RDB {p.rdb_version} files have no checksum"
    with path.open("rb") as fh:
        fh.seek(-8, 2)
        if fh.read(8) == bytes(8):
            return "the file was written without a checksum (rdbchecksum no)"
    flavor = "valkey" if p.magic == "VALKEY" or p.flavor == "valkey" else "redis"
    try:
        version = parse_version(p.server_version or "")
    except KvmError:
        version = ()
    written = rdb_version_written(ServerIdentity(flavor, version, p.server_version or "")) \
        if version else None
    if written != p.rdb_version:
        return (f"the file does not say it was written by a released server (redis-ver "
                f"{p.server_version or 'absent'}, RDB {p.rdb_version})")
    most = max_rdb_loadable(target.identity) or 0
    if p.magic == "VALKEY":
        loads = target.flavor == "valkey" and p.rdb_version <= most
    else:
        loads = p.rdb_version <= min(most, 11 if target.flavor == "valkey" else most)
    if not loads:
        return f"{target} does not load {p.describe()} as it is"
    return None


class FileLoad:
    """The fast path of a copy into ``endpoint``; ``note``: lines for the operator."""

    def __init__(self, endpoint: Endpoint, listen: str | None,
                 note: Callable[[str], None]):
        self.endpoint, self.listen, self.note = endpoint, listen, note
        self.log: list[str] = []  # the primary's own notes (for a failure's message)

    def refusal(self, path: Path, target: Target) -> str | None:
        """None when the target may load the file itself; otherwise why not (cheap checks:
        the checksum is verified by :meth:`load`)."""
        if target.flavor not in ("valkey", "redis", "dragonfly"):
            return f"{target} is not a Redis, Valkey or Dragonfly server"
        if self.endpoint.tls:
            return "the target is reached over TLS (its link to kvmigrate would be too)"
        client = self.endpoint.client()
        if int(client.info("cluster").get("cluster_enabled", 0) or 0):
            return "the target is a cluster node"
        if client.info("replication").get("role") != "master":
            return "the target is a replica"
        memory = client.info("memory")
        limit = int(memory.get("maxmemory", 0) or 0)
        if limit and target.flavor != "dragonfly":
            return ("the target has a maxmemory limit, which it ignores while loading as a "
                    "replica")
        if limit and limit - int(memory.get("used_memory", 0) or 0) < 2 * path.stat().st_size:
            return ("the file may not fit in the target's maxmemory (key by key, a write it "
                    "refuses stops the copy)")
        if self.listen is None and not _loopback(self.endpoint.host):
            return ("the target is not on this machine's loopback (give --listen HOST:PORT "
                    "it can reach)")
        return file_refusal(path, target)

    def verify(self, path: Path, progress: Callable[[int], None]) -> None:
        verify_checksum(path, progress)

    def load(self, path: Path, target: Target, progress: Callable[[int], None],
             before_end: Callable[[RdbSummary], None]) -> RdbSummary:
        """Serve ``path`` to the target while walking it; ``before_end(summary)`` may raise
        to stop before the last bytes are sent. The target is a primary again on return,
        whatever happened, and empty again when this raises."""
        size = path.stat().st_size
        magic = producer(path).magic
        ready = [0]
        complete = threading.Event()
        host, port = parse_listen(self.listen)
        if self.listen is None and ":" in self.endpoint.host:
            host = "::1"
        client = self.endpoint.client(timeout=30)
        restores = target.restores
        skip_streams = target.sets_entries_read_after  # their counters need commands

        def accept(type_code: int) -> bool:
            return restores(type_code, magic) and not (skip_streams and
                                                       type_code in STREAM_TYPES)

        # Dragonfly keeps what it has loaded when a transfer is cut: it is sent nothing
        # before the whole file has been walked
        first = target.flavor == "dragonfly"

        with tempfile.TemporaryDirectory(prefix="kvmigrate-load-") as work:
            after = Path(work) / "after-rdb"  # nothing follows the RDB
            after.touch(mode=0o600)
            server = ReplicaServer((host, port), path, after, lambda: 0, self.log.append,
                                   rdb_complete=complete, rdb_limit=lambda: ready[0])

            def advance(offset: int) -> None:
                ready[0] = offset if offset < size else ready[0]
                progress(offset)
                if server.error is not None or server.connections > 1:
                    raise KvmError("the target could not load the RDB (it connected again)",
                                   "see the target's log")

            server.start()
            try:
                with loading_while_received(client, self.note):
                    if first:
                        summary = walk(path, advance=progress, accept=accept,
                                       expiry_limit_ms=target.max_ttl_ms)
                        if summary.seconds_expiry or summary.functions:
                            raise NotWalked("keys with the seconds expiry opcode, or "
                                            "functions: Dragonfly's loader refuses them")
                        before_end(summary)
                    try:  # from REPLICAOF on: whatever stops this detaches the target
                        self._replicaof(client, server)
                        self._connected(server)
                        if not first:
                            summary = walk(path, advance=advance, accept=accept)
                            before_end(summary)
                        ready[0] = size
                        complete.set()
                        self._wait(client, server, first)
                    except BaseException:
                        server.rdb_failed.set()  # the sender stops; the link is cut
                        server.close()  # and the target cannot connect again
                        self._detach(client)
                        self._settle(client)
                        raise
                    server.release()
                    loaded = _keys(client)  # still a replica: it has expired nothing yet
                    self._detach(client)
            except NotWalked as exc:  # the target has dropped what it was sent
                raise NotLoaded("the target cannot load the file as it is "
                                f"({exc.reason})") from None
            finally:
                server.close()
        _check(loaded, summary, exact=not first)
        return summary

    def _detach(self, client: redis.Redis) -> None:
        """REPLICAOF NO ONE, once the target takes it (not while it is loading)."""
        deadline = time.monotonic() + SETTLE_S
        while True:
            try:
                client.execute_command("REPLICAOF", "NO", "ONE")
                return
            except redis.BusyLoadingError:
                if time.monotonic() > deadline:
                    raise KvmError("the target is still loading, and still a replica of "
                                   "kvmigrate", "run REPLICAOF NO ONE on it") from None
                time.sleep(POLL_S)

    def _replicaof(self, client: redis.Redis, server: ReplicaServer) -> None:
        host = server.host
        if host in WILDCARD:  # the address the target reaches us at: our side of its socket
            with socket.create_connection((self.endpoint.host, self.endpoint.port), 10) as s:
                host = s.getsockname()[0]
        try:
            client.execute_command("REPLICAOF", host, server.port)
        except redis.RedisError as exc:
            raise NotLoaded(f"the target refused REPLICAOF ({exc})") from None

    def _connected(self, server: ReplicaServer) -> None:
        """Until the target has asked for the file (it is then sent each megabyte as soon
        as it has been walked); NotLoaded when it does not connect in time."""
        if not server.syncing.wait(CONNECT_S):
            raise NotLoaded(f"the target did not connect to kvmigrate at {server.host}:"
                            f"{server.port} within {CONNECT_S:.0f} s (give --listen "
                            "HOST:PORT it can reach)")

    def _wait(self, client: redis.Redis, server: ReplicaServer, dragonfly: bool) -> None:
        """Until the target has loaded the whole file and acknowledged it (Dragonfly sends
        no acknowledgement: until it says its sync is no longer in progress)."""
        idle_since = time.monotonic()
        while not server.loaded.wait(WAIT_S):
            if dragonfly and server.linked.is_set() and _synced(client):
                return
            if server.error is not None:
                raise KvmError(f"serving the RDB to the target failed: {server.error}")
            if server.connections > 1:
                raise KvmError("the target could not load the RDB (it connected again)",
                               "see the target's log")
            replication = client.info("replication")
            busy = int(replication.get("master_sync_in_progress", 0) or 0) or \
                int(client.info("persistence").get("loading", 0) or 0)
            if busy or not server.connections:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > IDLE_S:
                raise KvmError("the target did not load the RDB (neither receiving nor "
                               f"loading it for {IDLE_S:.0f} s)", "see the target's log")

    def _settle(self, client: redis.Redis) -> None:
        """After a transfer cut short: until the target has dropped what it had received."""
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if not int(client.info("persistence").get("loading", 0) or 0) and \
                        not _keys(client):
                    return
            time.sleep(POLL_S)
        raise KvmError("the target still holds keys after the transfer was stopped",
                       "empty it (FLUSHALL) before copying again")


def _synced(client: redis.Redis) -> bool:
    info = client.info("replication")
    return info.get("master_link_status") == "up" and \
        not int(info.get("master_sync_in_progress", 0) or 0)


def _check(loaded: Counter[int], summary: RdbSummary, exact: bool) -> None:
    """The keys the target holds per database, as the walk counted them. A Redis or Valkey
    replica keeps the keys that had expired (they go once it is a primary): exactly the
    file's. Dragonfly may drop them as it loads."""
    for db in set(loaded) | set(summary.by_db):
        n, got = summary.by_db.get(db, 0), loaded.get(db, 0)
        least = n if exact else n - summary.expired
        if not least <= got <= n:
            raise KvmError(f"the target loaded {got:,} keys into db{db}; the file holds "
                           f"{n:,}" + ("" if exact else f" ({summary.expired:,} expired in all)"),
                           "see the target's log")


def _keys(client: redis.Redis) -> Counter[int]:
    return Counter({int(str(name)[2:]): int(v["keys"])
                    for name, v in client.info("keyspace").items()
                    if str(name).startswith("db") and isinstance(v, dict)})

