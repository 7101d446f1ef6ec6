"""``--mode proxy``: kvmigrate is a replica of the source and a primary for the target.

start: the source is asked whether its RDB can pass through unparsed
(:mod:`migrate.proxy.plan`); then PSYNC (:class:`migrate.sync.psync.ReplicationLink` spools
the RDB and the stream; partial resync on a dropped link).

* Pass-through (no field-TTL hash, no module value on the source): the proxy listens on
  ``--listen``, sends the target ``REPLICAOF <listen host> <port>`` at once and streams the
  RDB to it as it arrives (``$EOF:`` mark), header rewritten, checksum zeroed, the source's
  checksum verified on the way (:func:`migrate.proxy.rewrite.pass_through_rdb`).
* Otherwise every record is parsed (:func:`migrate.proxy.rewrite.rewrite_rdb`) into a spool
  file first, so a value the target cannot hold is refused before the target is touched;
  the target then gets the rewritten RDB length-prefixed, and the keys taken out of it as
  commands.

An empty target loads the RDB as it arrives rather than after writing it to disk
(:func:`migrate.proxy.diskless.loading_while_received`; its own ``repl-diskless-load`` is
put back once it acknowledged, or when the run ends).

Then the translated command stream follows (:mod:`migrate.proxy.forward`,
:mod:`migrate.proxy.primary`). The target's ACKs, mapped to source offsets, are what
kvmigrate acknowledges to the source and what lag is measured against.

close: the target is left a replica of the proxy's address (its data stays, read-only);
``REPLICAOF NO ONE`` on the target (cut-over) ends the replication.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, cast

import redis

from migrate.apply.target import Target as ApplyTarget
from migrate.errors import KvmError
from migrate.protocol.resp import encode_command
from migrate.proxy.diskless import loading_while_received
from migrate.proxy.forward import Forwarder
from migrate.proxy.plan import parse_reason
from migrate.proxy.primary import ReplicaServer, parse_listen
from migrate.proxy.rewrite import RewriteStats, pass_through_rdb, rewrite_rdb
from migrate.state.coordination import AppliedFile
from migrate.state.ledger import Ledger
from migrate.sync.engine import StreamFollower, Worker
from migrate.sync.heartbeat import Heartbeat, Mark
from migrate.sync.modes import PROXY
from migrate.sync.options import SyncOptions
from migrate.sync.overfull import check_replica_memory
from migrate.sync.psync import Generation, ReplicationLink, TransferRestarted, stall_note_s
from migrate.sync.replay import Translator
from migrate.sync.replica import GrowingFile
from migrate.sync.retry import REPLICATION
from migrate.sync.sides import Source, Target
from migrate.sync.status import StatusPublisher

WILDCARD = ("0.0.0.0", "::", "")
GIVE_BACK_S = 10.0  # how long a failed start waits for the target to drop a half load


def refusal(source: Source, target: Target, opts: SyncOptions) -> str | None:
    if opts.match:
        return "proxy mode forwards the whole stream; --match needs --mode scan"
    if opts.db_map:
        return "proxy mode lets the target load the RDB itself; --db-map needs --mode replica"
    if not source.has("PSYNC"):
        return f"{source} does not offer PSYNC (renamed or disabled)"
    if target.identity.flavor == "dragonfly":
        # seen on v1.40.1: as a replica of kvmigrate it reports no applied offset kvmigrate
        # can read, and like any replica it drops a write it refuses without an answer
        return ("a Dragonfly replica drops the writes it refuses without an answer and "
                "reports no applied offset to kvmigrate (seen on Dragonfly 1.40.1); use "
                "replica mode, which sees every refusal")
    if target.identity.flavor not in ("valkey", "redis"):
        return f"{target} is not a Redis or Valkey server"
    if not target.has("REPLICAOF"):
        return f"{target} does not offer REPLICAOF (renamed or disabled)"
    return None


class ProxySync(StreamFollower):
    idle_s = 0.005
    mode = PROXY

    def __init__(self, source: Source, target: Target, opts: SyncOptions, ledger: Ledger,
                 status: StatusPublisher, listen: str | None = None):
        self.source, self.target, self.opts = source, target, opts
        self.ledger, self.status = ledger, status
        self.listen = parse_listen(listen if listen is not None else
                                   getattr(opts, "listen", None))
        self.apply_target = ApplyTarget(target.identity)
        self.spool: Path = ledger.paths.spool
        self.link = ReplicationLink(source.endpoint, self.spool, self._applied_offset,
                                    opts.observer.note, opts.reconnect.policy(REPLICATION),
                                    status.update, stall_note_s(opts))
        self.heartbeat = Heartbeat(source.client, target.endpoint.client()) \
            if opts.heartbeat else None
        self.server: ReplicaServer | None = None
        self.forwarder: Forwarder | None = None
        self.rewrite: RewriteStats | None = None
        self.generation: Generation | None = None
        self.target_is_replica = False
        self._last_getack = 0.0
        self.applied_file = AppliedFile(ledger.paths.root)
        # the target's own repl-diskless-load, put back once it has loaded (or the run ends)
        self._load_setting = contextlib.ExitStack()
        self.worker = Worker("forward", "forwarding the stream", self.follow)

    def _applied_offset(self) -> int:
        if self.forwarder is not None and self.server is not None:
            if not self.server.loaded.is_set():
                return 0  # the target is still loading the RDB: none of it is applied yet
            return self.forwarder.source_offset(self.server.acked)
        return self.generation.start_offset if self.generation else 0

    # --- start ------------------------------------------------------------------------------
    def _parse_reason(self) -> str | None:
        return parse_reason(self.source.endpoint, self.source.identity, self.apply_target)

    def start(self) -> None:
        why_parse = self._parse_reason()
        how, replid, offset = self.link.psync(None, -1)
        if how != "full":
            raise KvmError(f"the source answered {how} to a first PSYNC")
        gen = self.generation = self.link.start_full(1, replid, offset)
        self.ledger.offsets.update(replid=replid, generation=1, stream_start=offset)
        self.opts.observer.note(f"replica link up: replid {replid}, offset {offset}")
        self.link.run_in_background()
        rdb_out, oob_out = self.spool / "proxy-rdb-1.rdb", self.spool / "proxy-out-1.bin"
        try:
            self._wait_for_rdb(gen)
            if why_parse is None:
                self._pass_through(gen, rdb_out, oob_out)
            else:
                self.opts.observer.note(f"parsing every record of the RDB: {why_parse}")
                self._rewrite(gen, rdb_out, oob_out)
                self._serve(gen, rdb_out, oob_out, None)
        except TransferRestarted:
            self._undo()
            raise KvmError("the source link was cut during the RDB transfer; proxy mode cannot "
                           "start the target's load again in place",
                           "run the sync again with --flush-target, or use --mode replica, "
                           "which starts the transfer again by itself") from None
        except BaseException:
            self._undo()
            raise
        assert gen.rdb_path is not None  # set once the RDB arrived (_wait_for_rdb)
        gen.rdb_path.unlink(missing_ok=True)
        assert self.rewrite is not None
        self.status.update(rewrite=self.rewrite.to_dict())

    def _undo(self) -> None:
        """A start that failed: the target (if told) is a primary again, the links closed."""
        if self.server is not None:
            self.server.rdb_failed.set()
            self.server.close()
        if self.target_is_replica:
            self._give_back()
            self.target_is_replica = False
        self._load_setting.close()
        self.link.close()

    def _give_back(self) -> None:
        """REPLICAOF NO ONE on the target. One loading the RDB as it arrived answers LOADING
        until it has dropped what it loaded (its link is closed by then): asked again."""
        deadline = time.monotonic() + GIVE_BACK_S
        while True:
            try:
                self.target.client.execute_command("REPLICAOF", "NO", "ONE")
                return
            except redis.BusyLoadingError:
                if time.monotonic() > deadline:
                    self.opts.observer.note(
                        f"the target was still loading after {GIVE_BACK_S:g} s: it stays a "
                        "replica of the proxy's address; run REPLICAOF NO ONE on it")
                    return
                time.sleep(0.05)
            except redis.RedisError:
                return

    def _serve(self, gen: Generation, rdb_out: Path, oob_out: Path,
               complete: threading.Event | None) -> None:
        self.forwarder = Forwarder(gen.stream_path, gen.start_offset, oob_out,
                                   oob_out.stat().st_size,
                                   Translator(self.apply_target.field_ttl_mode, {}, 0,
                                              target=self.apply_target,
                                              commands=self.target.command_names(),
                                              allow_loss=self.opts.allow_loss))
        self.server = ReplicaServer(self.listen, rdb_out, oob_out, lambda: self._out_size(),
                                    self.opts.observer.note, complete,
                                    released=self.opts.stop)
        self.server.start()
        if not any(self.target.keyspace().values()):  # otherwise it loads from disk anyway
            self._load_setting.enter_context(loading_while_received(
                self.target.client, self.opts.observer.note))
        self._replicaof()

    def _out_size(self) -> int:
        return self.forwarder.size if self.forwarder is not None else 0

    def _wait_for_rdb(self, gen: Generation) -> None:
        assert gen.rdb_path is not None
        while not gen.rdb_path.exists():
            if gen.abandoned:
                raise TransferRestarted("the RDB transfer was cut")
            self.link.check()
            if self.opts.stop.wait(0.02):
                raise KeyboardInterrupt
        self.status.update(sync_phase="rewriting")

    def _pass_through(self, gen: Generation, rdb_out: Path, oob_out: Path) -> None:
        """Every record loads on the target: it replicates from the proxy at once and gets
        the RDB as it arrives (EOF-marked), only the header and checksum changed."""
        assert gen.rdb_path is not None
        oob_out.write_bytes(b"")
        complete = threading.Event()
        with open(gen.rdb_path, "rb") as raw, open(rdb_out, "wb") as out:
            rdb_out.touch()
            self._serve(gen, rdb_out, oob_out, complete)

            def write(data: bytes) -> None:
                out.write(data)
                out.flush()

            src = GrowingFile(raw, gen, self.link, self.opts.stop)
            self.rewrite = pass_through_rdb(src, self._counting(write, raw, gen),
                                            self.apply_target)
        complete.set()
        r = self.rewrite
        self.opts.observer.note(
            f"RDB passed through for {self.target.identity}: {r.source_header} -> "
            f"{r.target_header}, {r.bytes_out:,} bytes, records not parsed (every one loads "
            "on the target)")

    def _counting(self, write: Callable[[bytes], object], raw: BinaryIO,
                  gen: Generation) -> Callable[[bytes], None]:
        """``write``, publishing now and then how much of the RDB has been rewritten (the
        bytes read of it) and its size when known."""
        last = [0.0]

        def counted(data: bytes) -> None:
            write(data)
            now = time.monotonic()
            if now - last[0] >= 0.5:
                last[0] = now
                self.status.update(bytes_copied=raw.tell(), bytes_total=gen.rdb_total)

        return counted

    def _rewrite(self, gen: Generation, rdb_out: Path, oob_out: Path) -> None:
        assert gen.rdb_path is not None
        with open(gen.rdb_path, "rb") as raw, open(rdb_out, "wb") as out, \
                open(oob_out, "wb") as oob:
            src = GrowingFile(raw, gen, self.link, self.opts.stop)
            self.rewrite = rewrite_rdb(src, self._counting(out.write, raw, gen),
                                       self.apply_target,
                                       lambda cmd: oob.write(encode_command(cmd)))
        r = self.rewrite
        self.opts.observer.note(
            f"RDB rewritten for {self.target.identity}: {r.source_header} -> "
            f"{r.target_header}, {r.keys_passed:,} key(s) passed through, "
            f"{r.keys_out_of_band:,} sent as commands after the RDB")

    def _replicaof(self) -> None:
        assert self.server is not None
        host = self.server.host
        client = self.target.client
        if host in WILDCARD:  # the address the target reaches us at: our side of its socket
            conn = client.connection_pool.get_connection("PING")
            try:
                conn.connect()
                sock = cast(socket.socket, conn._sock)  # connected just above
                host = sock.getsockname()[0]
            finally:
                client.connection_pool.release(conn)
        try:
            client.execute_command("REPLICAOF", host, self.server.port)
        except redis.RedisError as exc:
            raise KvmError(f"the target refused REPLICAOF {host} {self.server.port}: {exc}",
                           "REPLICAOF must be allowed on the target") from None
        self.target_is_replica = True
        self.opts.observer.note(f"the target replicates from the proxy at {host}:"
                                f"{self.server.port}")

    # --- running ----------------------------------------------------------------------------
    def _check(self) -> None:
        self.link.check()
        assert self.server is not None
        if self.server.error is not None:
            raise KvmError(f"the proxy's primary side failed: {self.server.error}")
        gen = self.link.generation
        if gen is not None and self.generation is not None and gen.number != \
                self.generation.number:
            raise KvmError("the source refused a partial resync and started a full one; "
                           "proxy mode cannot reload the target in place",
                           "run the sync again (--flush-target)")

    def advance(self) -> int:
        self._check()
        assert self.forwarder is not None
        return self.forwarder.step()

    def figures(self) -> dict[str, Any]:
        source_offset = int(self.source.info("replication").get("master_repl_offset", 0))
        applied = self._applied_offset()
        server = self.server
        gen = self.generation  # the RDB passed on: its size once all of it is through
        rdb = {} if gen is None else {
            "bytes_copied": gen.rdb_bytes,
            "bytes_total": gen.rdb_total or (gen.rdb_bytes if gen.rdb_done else None)}
        return {"mode": self.mode, "source_offset": source_offset, "applied_offset": applied,
                **rdb,
                "received_offset": self.link.received,
                "lag_bytes": max(0, source_offset - applied), "lag_keys": None,
                "keys": None, "target_errors": 0,  # the target loads and replays by itself
                "commands": self.forwarder.commands if self.forwarder else 0,
                "target_linked": bool(server and server.linked.is_set()),
                "target_reconnects": max(0, (server.connections if server else 1) - 1),
                **(self.forwarder.translator.figures() if self.forwarder else {}),
                **self.link.figures()}

    def catch_up(self) -> None:
        with self.ledger.phase("catch-up") as counters:
            wanted: int | None = None
            mark = Mark(self.heartbeat)
            seen = (-1, -1)
            progress = time.monotonic()
            while not self.opts.stop.is_set():
                while self.advance():
                    pass
                figures = self.figures()
                self.status.update(sync_phase="streaming", **figures)
                if wanted is None and self.server is not None and self.server.linked.is_set():
                    wanted = figures["source_offset"]
                now_seen = (self.server.acked if self.server else 0, self.link.received)
                if now_seen != seen:
                    seen, progress = now_seen, time.monotonic()
                elif time.monotonic() - progress > self.opts.stall_timeout_s:
                    raise KvmError(f"no replication progress for {self.opts.stall_timeout_s:.0f}"
                                   " s", "check the target's log: did it load the RDB?")
                # the target's first ACK after its full resync says it loaded the RDB: an
                # RDB taken at offset 0 (a source that never had a replica) is otherwise
                # "applied" before a key of it is loaded
                loaded = self.server is not None and self.server.loaded.is_set()
                if loaded:
                    self._load_setting.close()
                if wanted is not None and (not loaded or figures["applied_offset"] < wanted):
                    # loaded: asked for as often as the follow loop does; loading: the
                    # target reads none of them until it has loaded, then answers the first
                    self._ask_ack(every_s=0.01 if loaded else 0.1)
                if wanted is not None and loaded and figures["applied_offset"] >= wanted and \
                        mark.reached():
                    break
                time.sleep(0.01)
            counters.update(applied=self._applied_offset(),
                            rewrite=self.rewrite.to_dict() if self.rewrite else {})
            if not self.opts.stop.is_set():  # a replica ignores maxmemory: said here
                check_replica_memory(str(self.target), self.target.info("memory"),
                                     resumable=False)
        if self.forwarder and self.forwarder.translator.dropped:
            self.opts.observer.note(f"dropped as allowed by --allow-loss (counted): "
                                    f"{dict(self.forwarder.translator.dropped)}")
        if not self.opts.stop.is_set():
            self.worker.start()

    def step(self) -> bool:
        """After catch-up, in the worker thread (the stream keeps flowing while the sync
        verifies and follows): forward what the source sent, record what the target has
        applied (``applied.json`` follows the target's ACKs, so a cut-over sees the final
        offset applied within milliseconds), and ask for its ACK while anything forwarded is
        unacknowledged; whether anything moved."""
        moved = self.advance()
        applied = self._applied_offset()
        self.applied_file.update(applied, mode=self.mode)
        if self.forwarder is not None and applied < self.forwarder.source_parsed:
            self._ask_ack(every_s=0.01)
        return bool(moved)

    def _ask_ack(self, every_s: float = 0.1) -> None:
        """REPLCONF GETACK to the target (at most every ``every_s``): it answers at once
        instead of at its next once-a-second ACK."""
        now = time.monotonic()
        if self.forwarder is None or self.server is None or not self.server.linked.is_set() \
                or now - self._last_getack < every_s:
            return
        self._last_getack = now
        self.forwarder.inject("REPLCONF", "GETACK", "*")

    def written_keys(self) -> list[tuple[int, bytes]]:
        return self.forwarder.translator.touched.snapshot() if self.forwarder else []

    def drain(self, timeout: float = 10.0) -> bool:
        """Forward everything received so far and wait for the target to apply it (in
        source offsets: the target's answer to a GETACK counts the bytes before that GETACK,
        so its offset stays short of ``forwarder.size`` while GETACKs are asked for)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while self.advance():
                pass
            forwarder = self.forwarder
            if self.server is not None and forwarder is not None and \
                    forwarder.source_offset(self.server.acked) >= forwarder.source_parsed:
                return True
            self._ask_ack()
            time.sleep(0.05)
        return False

    def close(self) -> None:
        stopped = self.worker.stop()  # never drive the forwarder while its thread runs
        if self.heartbeat:
            with contextlib.suppress(KvmError, OSError, redis.RedisError):
                self.heartbeat.remove()
                # a target that left (promoted by a cut-over) acknowledges nothing more
                if self.server is not None and stopped and self.server.linked.is_set():
                    self.drain(5.0)
        if self.server is not None:
            self.server.close()
        self._load_setting.close()
        self.link.close()
        if self.forwarder is not None:
            self.forwarder.close()
