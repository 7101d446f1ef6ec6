"""Send entries to a live target: a :class:`CommandBuilder` for the commands, one pipelined
connection (bounded bytes in flight), SELECT when the database changes.

::

    from migrate.apply.writer import TargetWriter
    with TargetWriter(endpoint, target, producer_magic, options, db_map={0: 0}) as w:
        for rec in reader.records():
            if isinstance(rec, Entry):
                w.write(rec)
            elif isinstance(rec, Function):
                w.load_function(rec)
        stats = w.finish()        # waits for every reply; stats.failed has command errors

A target out of memory stops the copy at its first refusal
(:class:`~migrate.protocol.outofmemory.TargetOutOfMemory`, naming the command, key and db).
"""

from __future__ import annotations

from migrate.apply.commands import ApplyOptions, ApplyStats, CommandBuilder
from migrate.apply.target import Target
from migrate.dbmap import DbMap
from migrate.endpoint import Endpoint
from migrate.protocol.pipeline import PipelineWriter
from migrate.protocol.resp import encode_command
from migrate.rdb.records import Entry, Function

BATCH_BYTES = 256 * 1024  # commands are encoded here and handed over in batches this big


class TargetWriter:
    def __init__(self, endpoint: Endpoint, target: Target, producer_magic: str,
                 options: ApplyOptions | None = None, db_map: dict[int, int] | None = None,
                 pipe: PipelineWriter | None = None):
        """``pipe``: the writer to use (a cluster's writer routes each command by slot, so
        commands go to it one by one instead of in pre-encoded batches)."""
        self.builder = CommandBuilder(target, producer_magic, options)
        self.db_map = DbMap(db_map or {})
        self.pipe = pipe if pipe is not None else PipelineWriter(endpoint, db=0)
        self.routed = bool(getattr(self.pipe, "routed", False))
        self._db = 0
        self._batch: list[bytes] = []
        self._labels: list[object] = []  # (command, key, db) of each batched command
        self._batch_bytes = 0
        self.pipe.keep_labels()

    @property
    def stats(self) -> ApplyStats:
        return self.builder.stats

    def target_db(self, db: int) -> int:
        return self.db_map.to(db)

    def write(self, entry: Entry) -> int:
        """Queue the commands for one entry; returns how many were queued."""
        if entry.raw is not None and not self.routed and \
                (data := self.builder.restore_command(entry)) is not None:
            db = self.db_map.to(entry.db)  # the hot path: one RESTORE, encoded by the builder
            if db != self._db:
                self._batch.append(encode_command(("SELECT", db)))
                self._labels.append(None)
                self._db = db
            self._batch.append(data)
            self._labels.append(("RESTORE", entry.key, db))
            self._batch_bytes += len(data)
            if self._batch_bytes >= BATCH_BYTES:
                self._hand_over()
            return 1
        cmds = self.builder.commands(entry)
        if not cmds:
            return 0
        db = self.db_map.to(entry.db)
        if self.routed:
            if db != self._db:
                self.pipe.send("SELECT", db)
                self._db = db
            for cmd in cmds:
                self.pipe.send(*cmd, label=(cmd[0], entry.key, db))
            return len(cmds)
        batch, labels = self._batch, self._labels
        if db != self._db:
            batch.append(encode_command(("SELECT", db)))
            labels.append(None)
            self._db = db
        size = 0
        for cmd in cmds:
            data = encode_command(cmd)
            batch.append(data)
            labels.append((cmd[0], entry.key, db))
            size += len(data)
        self._batch_bytes += size
        if self._batch_bytes >= BATCH_BYTES:
            self._hand_over()
        return len(cmds)

    def _hand_over(self) -> None:
        if self._batch:
            self.pipe.send_encoded(b"".join(self._batch), len(self._batch), self._labels)
            self._batch = []
            self._labels = []
            self._batch_bytes = 0

    def load_function(self, function: Function) -> None:
        if self.builder.target.loads_functions:
            self._hand_over()
            self.pipe.send("FUNCTION", "LOAD", "REPLACE", function.code)
            self.stats.functions += 1

    def finish(self) -> ApplyStats:
        """Wait for every reply; command errors are counted in ``stats.failed``."""
        self._hand_over()
        pstats = self.pipe.flush()
        if pstats.errors:
            first = pstats.first_errors[0] if pstats.first_errors else "?"
            self.stats.failed[f"target refused a command (first: {first[:120]})"] += \
                pstats.errors
        return self.stats

    def close(self) -> None:
        self.pipe.close()

    def __enter__(self) -> TargetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
