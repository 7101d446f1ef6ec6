"""Which keys the source's stream wrote: a bounded sample the verification samples include,
so a lost or mistranslated write is looked at, not only random keys."""

from __future__ import annotations

import random


class KeyReservoir:
    """A bounded, uniform sample of the (db, key) pairs the stream wrote (Algorithm R), so
    the verification samples look at written keys, not only random ones."""

    def __init__(self, size: int = 1000, seed: int = 0):
        self.size = size
        self.seen = 0
        self.keys: list[tuple[int, bytes]] = []
        self._random = random.Random(seed)

    def snapshot(self) -> list[tuple[int, bytes]]:
        return list(self.keys)

    def add(self, db: int, key: bytes) -> None:
        self.seen += 1
        if len(self.keys) < self.size:
            self.keys.append((db, key))
            return
        slot = self._random.randrange(self.seen)
        if slot < self.size:
            self.keys[slot] = (db, key)
