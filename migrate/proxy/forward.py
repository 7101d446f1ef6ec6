"""The proxy's outgoing stream: the out-of-band commands of the RDB rewrite, then the
source's command stream translated as replica mode translates it (``--db-map``, hash field
TTL commands per target), appended to one file the primary side serves from.

Offsets: the target acknowledges bytes of that file; :meth:`Forwarder.source_offset` maps
an acknowledged target offset back to the source's replication offset (the last source
command whose translation the target has applied), so lag and verification work as in the
other modes.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from pathlib import Path
from typing import BinaryIO

import hiredis

from migrate.errors import KvmError
from migrate.protocol.resp import Arg, encode_command
from migrate.sync.replay import Translator

READ_BYTES = 4 << 20


class Forwarder:
    def __init__(self, stream_path: Path, stream_start: int, out_path: Path, oob_bytes: int,
                 translator: Translator):
        self.stream_path = stream_path
        self.out_path = out_path
        self.translator = translator
        self.reader = hiredis.Reader()
        self.source_parsed = stream_start  # source offset of the last byte parsed
        self.size = oob_bytes  # bytes in out_path (the out-of-band commands come first)
        self.commands = 0
        self._in: BinaryIO | None = None
        self._out = open(out_path, "ab")  # noqa: SIM115 - kept open while forwarding
        self._marks: deque[tuple[int, int]] = deque([(oob_bytes, stream_start)])
        self._mapped = (0, stream_start)
        self._lock = threading.Lock()
        self.refused: BaseException | None = None  # once refused, nothing more is forwarded

    def step(self) -> int:
        """Translate what the source has sent since the last step; bytes read."""
        if self.refused is not None:
            raise self.refused
        if self._in is None:
            if not self.stream_path.exists():
                return 0
            self._in = open(self.stream_path, "rb")  # noqa: SIM115
        data = self._in.read(READ_BYTES)
        if not data:
            return 0
        self.reader.feed(data)
        parts: list[bytes] = []
        try:
            while (cmd := self.reader.gets()) is not False:
                if not isinstance(cmd, list) or not cmd:
                    continue
                self.translator.offset = self.source_parsed
                try:
                    translated = self._translate(cmd)  # a refusal stops here, before it
                except KvmError as exc:
                    self.refused = exc
                    raise
                self.source_parsed += len(encode_command(cmd))
                self.commands += 1
                for out in translated:
                    encoded = encode_command(out)
                    parts.append(encoded)
                    self.size += len(encoded)
                self._marks.append((self.size, self.source_parsed))
        finally:  # what was translated before a refusal still reaches the target
            if parts:
                self._out.write(b"".join(parts))
            self._out.flush()
        return len(data)

    def inject(self, *cmd: Arg) -> None:
        """A command of the proxy's own (REPLCONF GETACK *): it moves the target's offset,
        not the source's."""
        encoded = encode_command(cmd)
        self._out.write(encoded)
        self._out.flush()
        self.size += len(encoded)

    def _translate(self, cmd: list[bytes]) -> list[tuple[Arg, ...]]:
        if cmd[0].upper() == b"PING":  # keeps the target's link alive, as the source meant
            return [("PING",)]
        return self.translator(cmd)

    def source_offset(self, target_acked: int) -> int:
        """The source offset the target has applied, given its acknowledged offset."""
        with self._lock:
            while self._marks and self._marks[0][0] <= target_acked:
                self._mapped = self._marks.popleft()
            return self._mapped[1]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._out.close()
        if self._in is not None:
            self._in.close()
