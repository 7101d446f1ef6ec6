"""Replaying a spooled replication stream into the target, with pipelining, translating what
the target needs.

Each command's size is its canonical RESP encoding (what a primary sends), which gives the
replication offset after it; the offset counts as *applied* once the target has answered the
command (the pipeline counts replies). Translations:

- ``SELECT n`` / ``SWAPDB a b`` / ``MOVE key n`` / ``COPY ... DB n``: databases through
  ``--db-map``; FLUSHALL, FLUSHDB, MULTI/EXEC and script effects pass as they come (a
  primary replicates a script's effects, and expirations as DEL/UNLINK).
- ``PING`` and ``REPLCONF`` are the link's own and are not replayed.
- Hash field TTL commands: kept for targets with field TTLs (Redis 7.4+, Valkey 9);
  ``HPEXPIREAT`` becomes ``HEXPIRE`` (seconds, rounded up) for Dragonfly; dropped and
  counted for targets without them (Valkey 8), as preflight reports.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from pathlib import Path
from typing import BinaryIO

import hiredis

from migrate.protocol.pipeline import PipelineWriter
from migrate.protocol.resp import Arg, encode_command

FIELD_TTL_COMMANDS = {b"HEXPIRE", b"HPEXPIRE", b"HEXPIREAT", b"HPEXPIREAT", b"HPERSIST",
                      b"HSETEX", b"HGETEX", b"HGETDEL"}
LINK_COMMANDS = {b"PING", b"REPLCONF"}


class Translator:
    def __init__(self, field_ttl_mode: str | None, db_map: dict[int, int], db: int = 0):
        self.field_ttl_mode = field_ttl_mode
        self.db_map = db_map
        self.db = db  # the source database the stream is in
        self.dropped: Counter[str] = Counter()

    def mapped(self, db: int | bytes) -> int:
        n = int(db)
        return self.db_map.get(n, n)

    def __call__(self, args: list[bytes]) -> list[tuple[Arg, ...]]:
        name = args[0].upper()
        if name in LINK_COMMANDS:
            return []
        if name == b"SELECT":
            self.db = int(args[1])
            return [("SELECT", self.mapped(self.db))]
        if name == b"SWAPDB" and len(args) == 3:
            return [("SWAPDB", self.mapped(args[1]), self.mapped(args[2]))]
        if name == b"MOVE" and len(args) == 3:
            return [("MOVE", args[1], self.mapped(args[2]))]
        if name == b"COPY":
            out = list(args)
            for i, a in enumerate(out[:-1]):
                if a.upper() == b"DB":
                    out[i + 1] = str(self.mapped(out[i + 1])).encode()
            return [tuple(out)]
        if name in FIELD_TTL_COMMANDS:
            return self._field_ttl(name, args)
        return [tuple(args)]

    def _field_ttl(self, name: bytes, args: list[bytes]) -> list[tuple[Arg, ...]]:
        if self.field_ttl_mode == "hpexpireat":
            return [tuple(args)]
        if self.field_ttl_mode == "hexpire" and name == b"HPEXPIREAT":
            seconds = max(1, math.ceil((int(args[2]) - time.time() * 1000) / 1000))
            return [("HEXPIRE", args[1], seconds, *args[3:])]
        if self.field_ttl_mode == "hexpire" and name in (b"HEXPIRE", b"HSETEX", b"HGETEX"):
            return [tuple(args)]
        self.dropped[name.decode()] += 1
        return []


class StreamReplayer:
    """Follows a growing stream file; ``step()`` replays what has arrived."""

    def __init__(self, path: Path, start_offset: int, writer: PipelineWriter,
                 translator: Translator):
        self.path = path
        self.offset = start_offset  # offset of the last byte parsed
        self.writer = writer
        self.translator = translator
        self.reader = hiredis.Reader()
        self._fh: BinaryIO | None = None
        self._marks: deque[tuple[int, int, int]] = deque()  # (sent, offset, db)
        self._applied = (start_offset, translator.db)
        self.commands = 0

    def _file(self) -> BinaryIO | None:
        if self._fh is None and self.path.exists():
            self._fh = open(self.path, "rb")  # noqa: SIM115 - kept open while following
        return self._fh

    def step(self, max_bytes: int = 4 << 20) -> int:
        """Parse and send what is in the file now (up to ``max_bytes``); bytes consumed."""
        fh = self._file()
        if fh is None:
            return 0
        data = fh.read(max_bytes)
        if not data:
            return 0
        self.reader.feed(data)
        while (cmd := self.reader.gets()) is not False:
            if not isinstance(cmd, list) or not cmd:
                continue
            self.offset += len(encode_command(cmd))
            for out in self.translator(cmd):
                self.writer.send(*out)
            self.commands += 1
        self._marks.append((self.writer.stats.sent, self.offset, self.translator.db))
        return len(data)

    def applied(self) -> tuple[int, int]:
        """(offset, source db) of the last command the target has answered."""
        replied = self.writer.stats.replied
        while self._marks and self._marks[0][0] <= replied:
            _, offset, db = self._marks.popleft()
            self._applied = (offset, db)
        return self._applied

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
