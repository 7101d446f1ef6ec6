"""What every type reader shares: the input, the producer and the chunk bounds."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from migrate.rdb.records import Producer
from migrate.rdb.source import RdbInput

Chunks = Iterator[tuple[Any, int]]


@dataclass
class ValueContext:
    inp: RdbInput
    producer: Producer
    chunk_elements: int = 10_000
    chunk_bytes: int = 4 * 1024 * 1024


class Batch:
    """Collects elements until a bound is reached; ``full()`` says when to yield."""

    def __init__(self, ctx: ValueContext):
        self.items: list[Any] = []
        self.bytes = 0
        self._max_items = ctx.chunk_elements
        self._max_bytes = ctx.chunk_bytes

    def add(self, item: Any, size: int) -> bool:
        self.items.append(item)
        self.bytes += size
        return len(self.items) >= self._max_items or self.bytes >= self._max_bytes

    def extend(self, items: list[bytes]) -> bool:
        """Add many byte strings at once when they fit without reaching a bound (then the
        chunks are the same as adding them one by one); False (nothing added) otherwise."""
        if len(self.items) + len(items) >= self._max_items:
            return False
        size = sum(map(len, items))
        if self.bytes + size >= self._max_bytes:
            return False
        self.items.extend(items)
        self.bytes += size
        return True

    def take(self) -> list[Any]:
        items = self.items
        self.items = []
        self.bytes = 0
        return items


def split(items: list[Any], ctx: ValueContext, size_of: Any = None) -> Chunks:
    """Yield an already-decoded list in bounded chunks (at least one chunk, even empty)."""
    if len(items) <= ctx.chunk_elements and size_of is None:
        yield items, len(items)
        return
    batch = Batch(ctx)
    yielded = False
    for item in items:
        if batch.add(item, size_of(item) if size_of else 0):
            chunk = batch.take()
            yield chunk, len(chunk)
            yielded = True
    if batch.items or not yielded:
        chunk = batch.take()
        yield chunk, len(chunk)
