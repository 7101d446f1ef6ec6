"""``--mode replica``: kvmigrate itself is a replica of the source.

The link (:mod:`migrate.sync.psync`) spools the RDB and the command stream to ``--state
DIR/spool``; this engine loads the RDB into the target through the RDB reader and the
writers (:mod:`migrate.rdb`, :mod:`migrate.apply`: RESTORE where the target reads the
encoding, typed commands otherwise, so Redis 8 data reaches Valkey 9), then replays the
stream (:mod:`migrate.sync.replay`). The applied offset and the stream's current database are
written after every batch the target has answered (``applied.json`` in the state folder),
so ``--resume`` asks the source for ``PSYNC <replid> <applied+1>`` and re-applies nothing it
has seen answered; a full resync (the source refused) flushes the target and loads again.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, TypeVar

import redis

from migrate.apply.commands import ApplyOptions
from migrate.apply.target import STREAM_TYPES
from migrate.apply.target import Target as ApplyTarget
from migrate.apply.writer import TargetWriter
from migrate.errors import ConnectError, KvmError
from migrate.protocol.outofmemory import TargetOutOfMemory
from migrate.protocol.pipeline import PipelineWriter
from migrate.rdb import Entry, Function, RdbReader, SlotImport
from migrate.state.disk import state_disk_error
from migrate.state.ledger import Ledger, write_json_atomic
from migrate.sync.engine import StreamFollower, Worker
from migrate.sync.heartbeat import Heartbeat, Mark
from migrate.sync.modes import REPLICA
from migrate.sync.options import SyncOptions
from migrate.sync.psync import Generation, ReplicationLink, TransferRestarted, stall_note_s
from migrate.sync.replay import StreamReplayer, Translator
from migrate.sync.retry import REPLICATION
from migrate.sync.rules import (
    ChangeRefused,
    SlotsMigratedAtomically,
    TargetRefused,
    refuse_failed_keys,
)
from migrate.sync.sides import Source, Target
from migrate.sync.status import StatusPublisher

T = TypeVar("T")


class GrowingFile:
    """A read-only view of the RDB spool file that waits for more bytes until the link has
    received the whole RDB, so loading overlaps the transfer."""

    def __init__(self, raw: BinaryIO, gen: Generation, link: ReplicationLink,
                 stop: threading.Event):
        self.raw, self.gen, self.link, self.stop = raw, gen, link, stop

    def _wait_for(self, read: Callable[[int], bytes], n: int) -> bytes:
        while True:
            done = self.gen.rdb_done  # read before reading the file: no byte is missed
            data = read(n)
            if data or done:
                return data
            if self.gen.abandoned:
                raise TransferRestarted("the RDB transfer was cut")
            self.link.check()
            if self.stop.wait(0.005):
                raise KeyboardInterrupt

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            chunks = []
            while chunk := self._wait_for(self.raw.read, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        out = b""
        while len(out) < n:
            chunk = self._wait_for(self.raw.read, n - len(out))
            if not chunk:
                break
            out += chunk
        return out

    def read1(self, n: int = -1) -> bytes:
        return self._wait_for(self.raw.read, n if n and n > 0 else 1 << 20)


def _until_restarted(records: Iterator[T], writer: TargetWriter) -> Iterator[T]:
    """The RDB's records; when its transfer is cut (:class:`TransferRestarted`), every write
    sent so far is answered first, so the flush that follows finds them all."""
    try:
        yield from records
    except TransferRestarted:
        writer.finish()
        raise


def refusal(source: Source, target: Target, opts: SyncOptions) -> str | None:
    if opts.match:
        return "replica mode replays the command stream as it is; --match needs --mode scan"
    if not source.has("PSYNC"):
        return f"{source} does not offer PSYNC (renamed or disabled)"
    return None


class ReplicaSync(StreamFollower):
    mode = REPLICA

    def __init__(self, source: Source, target: Target, opts: SyncOptions, ledger: Ledger,
                 status: StatusPublisher):
        self.source, self.target, self.opts = source, target, opts
        self.ledger, self.status = ledger, status
        self.apply_target = ApplyTarget(target.identity)
        self.applied_path = ledger.paths.applied
        self.link = ReplicationLink(source.endpoint, ledger.paths.spool, self._applied_offset,
                                    opts.observer.note, opts.reconnect.policy(REPLICATION),
                                    status.update, stall_note_s(opts))
        self.heartbeat = Heartbeat(source.client, target.endpoint.client(
            db=opts.db_map.to(0)), resumes_from_successor=True) if opts.heartbeat else None
        self.replayer: StreamReplayer | None = None
        self.writer: PipelineWriter | None = None
        self.gen_number: int | None = None
        self.resume_db = 0
        self.keys_loaded = 0
        self.load_stats: dict[str, Any] = {}
        self.worker = Worker("replay", "replaying the stream", self.follow)
        self._last_progress = time.monotonic()

    def _applied_offset(self) -> int:
        if self.replayer is not None:
            return self.replayer.applied()[0]
        gen = self.link.generation
        return gen.start_offset if gen else 0

    # --- start ------------------------------------------------------------------------------
    def _killed_in(self) -> str | None:
        """The phase the resumed run was killed in (its ledger still says it runs): the
        commands it sent after its last recorded offset may or may not have been applied."""
        running = [p["name"] for p in self.ledger.data.get("phases", [])
                   if p.get("status") == "running"]
        return running[-1] if running else None

    def start(self) -> None:
        saved = json.loads(self.applied_path.read_text()) if self.applied_path.exists() else {}
        killed = self._killed_in() if self.opts.resume and saved.get("replid") else None
        if killed:
            # replaying from the recorded offset could apply some commands twice (an INCR,
            # an RPUSH: seen after a SIGKILL during the verification)
            self.opts.observer.note(f"resume: the previous run was killed (its ledger says "
                                    f"'{killed}' is running): commands it sent after offset "
                                    f"{saved['offset']} may have been applied; flushing the "
                                    "target and loading again, so none is applied twice")
            self.target.flushall()
            saved = {}
        if self.opts.resume and saved.get("replid"):
            how, replid, offset = self.link.psync(saved["replid"], saved["offset"])
            if how == "continue":
                self.link.start_continue(saved["generation"] + 1, replid, saved["offset"])
                self.resume_db = saved.get("db", 0)
                self.opts.observer.note(f"resume: partial resync accepted at offset "
                                        f"{saved['offset'] + 1}; nothing is loaded again")
            else:
                self.opts.observer.note("resume: the source refused a partial resync "
                                        "(FULLRESYNC); flushing the target and loading again")
                self.target.flushall()
                self.link.start_full(saved.get("generation", 0) + 1, replid, offset)
        else:
            if self.opts.resume and any(self.target.keyspace().values()):
                self.opts.observer.note("resume: no applied offset was recorded; flushing the "
                                        "target and loading again")
                self.target.flushall()
            how, replid, offset = self.link.psync(None, -1)
            if how != "full":
                raise KvmError(f"the source answered {how} to a first PSYNC")
            self.link.start_full(1, replid, offset)
        gen = self.link.generation
        assert gen is not None
        self.ledger.offsets.update(replid=gen.replid, generation=gen.number,
                                   stream_start=gen.start_offset)
        self.opts.observer.note(f"replica link up: replid {gen.replid}, offset "
                                f"{gen.start_offset}")
        self.link.run_in_background()

    # --- loading and replaying --------------------------------------------------------------
    def _load_rdb(self, gen: Generation) -> None:
        """Load the RDB while it is still arriving: the reader follows the spool file."""
        assert gen.rdb_path is not None
        while not gen.rdb_done and not gen.rdb_path.exists():
            if gen.abandoned:
                raise TransferRestarted("the RDB transfer was cut")
            self.link.check()
            self.status.update(sync_phase="full-sync", bytes_copied=gen.rdb_bytes,
                               bytes_total=gen.rdb_total)
            if self.opts.stop.wait(0.05):
                raise KeyboardInterrupt
        self.status.update(sync_phase="loading", bytes_copied=gen.rdb_bytes)
        try:
            raw_file = open(gen.rdb_path, "rb")  # noqa: SIM115 (the with below closes it)
        except FileNotFoundError:
            if gen.abandoned:  # cut and removed between the two looks
                raise TransferRestarted("the RDB transfer was cut") from None
            raise
        with raw_file as raw:
            fh = GrowingFile(raw, gen, self.link, self.opts.stop)
            options = ApplyOptions(replace=True,
                                   drop_field_ttls="field-ttl" in self.opts.allow_loss)
            reader = RdbReader(fh, raw_limit=options.max_bytes - 16, checked=True)
            reader.skim = self._passes_as_bytes(reader.producer.magic)
            with TargetWriter(self.target.endpoint, self.apply_target, reader.producer.magic,
                              options, self.opts.db_map, pipe=self.target.writer(0)) as writer:
                for rec in _until_restarted(reader.records(), writer):
                    if isinstance(rec, Entry):
                        writer.write(rec)
                        if rec.final:
                            self.keys_loaded += 1
                            if self.keys_loaded % 2000 == 0:  # the RDB may still arrive
                                self.status.update(keys=self.keys_loaded,
                                                   bytes_copied=gen.rdb_bytes,
                                                   bytes_total=gen.rdb_total)
                    elif isinstance(rec, Function):
                        writer.load_function(rec)
                    elif isinstance(rec, SlotImport):  # the stream may end the import later
                        raise SlotsMigratedAtomically.in_rdb(rec.ranges)
                stats = writer.finish()
        self.load_stats = stats.to_dict()
        refuse_failed_keys(stats.failed, self.opts.allow_loss, self.opts.observer.note)
        if stats.field_ttls_dropped:
            self.opts.observer.note(f"{stats.field_ttls_dropped} hash field TTL(s) not copied "
                                    "(the fields were): allowed by --allow-loss field-ttl")
        self.status.update(keys=self.keys_loaded, load=self.load_stats,  # all of the RDB in:
                           bytes_copied=gen.rdb_bytes,  # its size (unknown before, diskless)
                           bytes_total=gen.rdb_total or gen.rdb_bytes)
        gen.rdb_path.unlink(missing_ok=True)  # loaded: the spool keeps only the stream

    def _passes_as_bytes(self, magic: str) -> Callable[[int, int], bool]:
        """Which keys go to the target as the bytes the source sent (RESTORE of the value
        as it is, stepped over, not decoded): the types the target's RESTORE reads as they
        are from a file with this header ``magic``. Plain strings take the reader's own fast
        path; streams are decoded for a target that needs their groups' counters set again.
        The reader checks each such value as a server checks it when it loads it, and
        decodes any that fails or is too big for one command (RdbReader's ``checked``)."""
        target = self.apply_target
        passes = [t != 0 and target.restores(t, magic) and not (
            t in STREAM_TYPES and target.sets_entries_read_after) for t in range(256)]

        def skim(type_code: int, offset: int) -> bool:
            return passes[type_code]
        return skim

    def _load_complete_rdb(self, gen: Generation) -> Generation:
        """Load ``gen``'s RDB; when its transfer is cut, flush what was loaded and load the
        link's next generation (a new full sync) from the start. Returns the one loaded."""
        while True:
            try:
                self._load_rdb(gen)
                return gen
            except TransferRestarted:
                gen = self._next_generation(gen)
                self.opts.observer.note("the RDB transfer was cut: flushing the target to "
                                        "load the new transfer from the start")
                self.target.flushall()
                self.keys_loaded = 0

    def _next_generation(self, gen: Generation) -> Generation:
        while (new := self.link.generation) is gen or new is None:
            self.link.check()
            self.status.update(sync_phase="reconnecting")
            if self.opts.stop.wait(0.05):
                raise KeyboardInterrupt
        return new

    def _open_generation(self, gen: Generation) -> Generation:
        if self.gen_number is not None and gen.rdb_path is not None:
            self.opts.observer.note("full resync: flushing the target to load the new RDB")
            if self.writer is not None:
                self.writer.flush()
            self.applied_path.unlink(missing_ok=True)  # its offset is of the flushed data
            self.target.flushall()
        if gen.rdb_path is not None:
            gen = self._load_complete_rdb(gen)
        if self.replayer is not None:
            self.replayer.close()
        if self.writer is None:
            self.writer = self.target.writer(self.opts.db_map.to(self.resume_db))
        elif gen.rdb_path is not None:
            self.writer.send("SELECT", self.opts.db_map.to(0))
        db = self.resume_db if gen.rdb_path is None else 0
        self.replayer = StreamReplayer(gen.stream_path, gen.start_offset, self.writer,
                                       Translator(self.apply_target.field_ttl_mode,
                                                  self.opts.db_map, db,
                                                  target=self.apply_target,
                                                  commands=self.target.command_names(),
                                                  allow_loss=self.opts.allow_loss))
        self.writer.keep_labels()
        self.gen_number = gen.number
        self.ledger.offsets.update(replid=gen.replid, generation=gen.number)
        self._save_applied(gen)  # loaded: a source that stays idle is caught up as it is
        return gen

    def advance(self) -> int:
        """Replay what has arrived; returns bytes consumed."""
        self.link.check()
        gen = self.link.generation
        assert gen is not None
        if gen.number != self.gen_number:
            gen = self._open_generation(gen)
        assert self.replayer is not None and self.writer is not None
        try:
            try:
                consumed = self.replayer.step()
            except ChangeRefused:  # nothing of it was sent: resume starts at the refused one
                self.writer.flush()
                self._checked(gen)
                self._save_applied(gen)
                raise
            if consumed:
                self.writer.flush()
        except TargetOutOfMemory:  # writes after the refused one may have been applied
            self.applied_path.unlink(missing_ok=True)  # no exact offset: --resume reloads
            raise
        except ConnectError as exc:  # the target's link (the source's is the link thread's)
            raise self._target_lost(exc) from None
        if consumed:
            self._checked(gen)
            self._save_applied(gen)
            self._last_progress = time.monotonic()
        return consumed

    def _target_lost(self, exc: ConnectError) -> KvmError:
        """The target's link dropped with commands sent and unanswered: the target may have
        applied some of them, and replaying them again would apply those twice (an INCR, an
        RPUSH), so no offset is exact to resume from: --resume loads again."""
        self.applied_path.unlink(missing_ok=True)
        why = exc.message
        try:  # one look at why: a target that now refuses the password says so
            self.target.endpoint.client(timeout=2.0).close()
        except ConnectError as again:
            if "cannot authenticate" in again.message:
                why = f"{why}, and {again.message}"
        except (KvmError, OSError, redis.RedisError):
            pass
        return KvmError(f"{why}; the target may have applied commands it did not answer",
                        "run again with --resume: it flushes the target and loads it again, "
                        "so nothing is applied twice")

    def _checked(self, gen: Generation) -> None:
        """Stop at a write the target refused. Commands after it in the same pipelined batch
        were applied, so no offset is exact to resume from: --resume loads again."""
        assert self.replayer is not None
        try:
            self.replayer.check_refusals()
        except TargetRefused:
            self.applied_path.unlink(missing_ok=True)
            raise

    def _save_applied(self, gen: Generation) -> None:
        assert self.replayer is not None
        offset, db = self.replayer.applied()
        write_json_atomic(self.applied_path, {"replid": gen.replid, "offset": offset, "db": db,
                                              "generation": gen.number})
        self.ledger.offsets.update(applied=offset, db=db)

    def figures(self) -> dict[str, Any]:
        source_offset = int(self.source.info("replication").get("master_repl_offset", 0))
        applied = self._applied_offset()
        pstats = self.writer.stats if self.writer else None
        return {"mode": self.mode, "source_offset": source_offset, "applied_offset": applied,
                "received_offset": self.link.received,
                "lag_bytes": max(0, source_offset - applied), "lag_keys": None,
                "keys": self.keys_loaded,
                "commands": self.replayer.commands if self.replayer else 0,
                "target_errors": pstats.errors if pstats else 0,
                **(self.replayer.translator.figures() if self.replayer else {}),
                **self.link.figures()}

    def catch_up(self) -> None:
        with self.ledger.phase("catch-up") as counters:
            mark = Mark(self.heartbeat)
            while not self.opts.stop.is_set():
                target_offset = int(self.source.info("replication").get(
                    "master_repl_offset", 0))
                while self.advance():
                    pass
                figures = self.figures()
                self.status.update(sync_phase="streaming", **figures)
                if self._applied_offset() >= target_offset and mark.reached():
                    break
                if time.monotonic() - self._last_progress > self.opts.stall_timeout_s:
                    raise KvmError(f"no replication progress for {self.opts.stall_timeout_s:.0f}"
                                   " s", "check the source and the target")
                time.sleep(0.02)
            counters.update(applied=self._applied_offset(), keys_loaded=self.keys_loaded,
                            load=self.load_stats)
        self.worker.start()

    def step(self) -> bool:
        return bool(self.advance())

    def check(self) -> None:
        error = self.worker.error
        if isinstance(error, OSError) and \
                (disk := state_disk_error(error, self.ledger.paths.root)):
            raise disk  # applied.json could not be written: one line naming it
        self.worker.check()

    def written_keys(self) -> list[tuple[int, bytes]]:
        return self.replayer.translator.touched.snapshot() if self.replayer else []

    def close(self) -> None:
        stopped = self.worker.stop()  # never drive the writer while the replay thread runs
        if self.heartbeat:
            self.heartbeat.remove()
            # the DEL travels the stream; give it a moment to be replayed
            deadline = time.monotonic() + 2
            while stopped and time.monotonic() < deadline and self.heartbeat.seen() is not None:
                with contextlib.suppress(KvmError, OSError, redis.RedisError):
                    self.advance()
                time.sleep(0.02)
        self.link.close()
        if self.replayer is not None:
            self.replayer.close()
        if self.writer is not None:
            if stopped:
                with contextlib.suppress(KvmError, OSError):
                    self.writer.flush()
            self.writer.close()
