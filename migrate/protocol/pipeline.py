"""A pipelined writer: commands stream to the server while a reader thread counts replies.

It keeps at most ``max_in_flight_bytes`` unacknowledged, so a slow server slows the writer
instead of filling memory (RedisShake's writer idea), and :meth:`flush` returns only when
every command sent has been answered ("consistent"). The connection is
:func:`migrate.protocol.connect.connect`'s; a reply owed for ``timeout`` seconds fails the
writer (an idle connection may stay silent). A target out of memory stops the writer at its
first refusal (:mod:`migrate.protocol.outofmemory`).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import hiredis

from migrate.endpoint import Endpoint
from migrate.errors import ConnectError, KvmError
from migrate.protocol.connect import INCOMPLETE, READ_TIMEOUT_S, connect
from migrate.protocol.outofmemory import TargetOutOfMemory, is_out_of_memory
from migrate.protocol.resp import Arg, encode_command
from migrate.protocol.sendbuffer import SendBuffer


@dataclass
class PipelineStats:
    sent: int = 0
    replied: int = 0
    errors: int = 0
    first_errors: list[str] = field(default_factory=list)
    # what the first refused command was (its label, given to send()), when labels are kept
    first_error_label: object = None


class PipelineWriter:
    def __init__(self, endpoint: Endpoint, *, db: int | None = None,
                 max_in_flight_bytes: int = 8 * 1024 * 1024, timeout: float = READ_TIMEOUT_S):
        self.endpoint = endpoint
        self.stats = PipelineStats()
        self._cond = threading.Condition()
        self._pending_sizes: deque[int] = deque()
        self._pending_labels: deque[object] | None = None
        self._conn = connect(endpoint, db=db, timeout=timeout)
        self._sock = self._conn.duplex()
        self._out = SendBuffer(self._sock, endpoint, self._cond, max_in_flight_bytes)
        self._closed = False
        self._thread = threading.Thread(target=self._read_loop, daemon=True,
                                        name=f"kvm-pipeline-{endpoint.port}")
        self._thread.start()

    def keep_labels(self) -> None:
        """From now on, remember each command's label so a refusal can be named."""
        with self._cond:
            if self._pending_labels is None:
                self._pending_labels = deque([None] * len(self._pending_sizes))

    def send(self, *args: Arg, label: object = None) -> None:
        data = encode_command(args)
        with self._cond:
            self._pending_sizes.append(len(data))
            if self._pending_labels is not None:
                self._pending_labels.append(label)
            self.stats.sent += 1
        self._out.add(data)

    def send_encoded(self, data: bytes, commands: int,
                     labels: list[object] | None = None) -> None:
        """Send ``commands`` commands already encoded as RESP in ``data`` (e.g. joined
        ``hiredis.pack_command`` outputs): the batch form of :meth:`send`; ``labels``, one
        per command, when labels are kept."""
        if commands <= 0:
            return
        with self._cond:  # the bytes count as acknowledged with the batch's last reply
            self._pending_sizes.extend([0] * (commands - 1))
            self._pending_sizes.append(len(data))
            if self._pending_labels is not None:
                self._pending_labels.extend(labels if labels is not None and
                                            len(labels) == commands else [None] * commands)
            self.stats.sent += commands
        self._out.add(data)

    def _read_loop(self) -> None:
        reader = hiredis.Reader(notEnoughData=INCOMPLETE)
        try:
            while True:
                try:
                    chunk = self._sock.recv(1 << 20)
                except TimeoutError:
                    if self._out.unacked:
                        raise TimeoutError(f"no reply within {self._conn.timeout:g} s") \
                            from None
                    continue  # idle: nothing is owed
                if not chunk:
                    if not self._closed:
                        raise ConnectionError("server closed the connection")
                    return
                reader.feed(chunk)
                replies = list(iter(reader.gets, INCOMPLETE))  # every buffered reply, in C
                self._settle(len(replies), _errors(replies))
        except BaseException as exc:  # handed to the writing thread
            if not self._closed:
                self._out.fail(exc)

    def _settle(self, replied: int, errors: list[tuple[int, str]]) -> None:
        """Account for ``replied`` replies, ``errors`` (index, text) among them."""
        first_error_at = errors[0][0] if errors else -1
        oom_at, oom_error = next(((i, text) for i, text in errors if is_out_of_memory(text)),
                                 (-1, ""))
        freed = 0
        with self._cond:
            labels = self._pending_labels
            sizes = self._pending_sizes
            if not errors:  # the common case: no label is looked at
                for _ in range(replied):
                    freed += sizes.popleft()
                if labels:
                    for _ in range(min(replied, len(labels))):
                        labels.popleft()
            else:
                for i in range(replied):
                    freed += sizes.popleft()
                    label = labels.popleft() if labels else None
                    if i == first_error_at and self.stats.errors == 0:
                        self.stats.first_error_label = label
                    if i == oom_at:
                        self._out.stop(TargetOutOfMemory(self.endpoint.display(),
                                                         oom_error, label))
            self._out.acked(freed)
            self.stats.replied += replied
            self.stats.errors += len(errors)
            room = 10 - len(self.stats.first_errors)
            self.stats.first_errors.extend(text for _, text in errors[:max(room, 0)])
            self._cond.notify_all()

    def flush(self) -> PipelineStats:
        """Send what is buffered and wait until every command has a reply."""
        self._out.wait_until(lambda: self.stats.replied >= self.stats.sent)
        if self.stats.errors and self.stats.first_errors and \
                self.stats.first_errors[0].startswith(("NOAUTH", "WRONGPASS", "invalid pass")):
            raise ConnectError(f"cannot authenticate to {self.endpoint.display()}: "
                               f"{self.stats.first_errors[0]}")
        return self.stats

    def close(self) -> None:
        self._closed = True
        self._sock.close(reader=self._thread)

    def __enter__(self) -> PipelineWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _errors(replies: list[object]) -> list[tuple[int, str]]:
    """(index, text) of each error reply; a batch without any is told by its reply types
    alone (looked at in C)."""
    if not any(issubclass(t, hiredis.ReplyError) for t in set(map(type, replies))):
        return []
    return [(i, str(r)) for i, r in enumerate(replies) if isinstance(r, hiredis.ReplyError)]


def require_no_errors(stats: PipelineStats, what: str) -> None:
    if stats.errors:
        raise KvmError(f"{what}: {stats.errors} command(s) failed, first: "
                       f"{stats.first_errors[0] if stats.first_errors else '?'}")
