"""The reader's fast paths (strings read or stepped over straight from its buffer) give the
same records as its byte-by-byte paths, whatever the size of the reads under it."""

from __future__ import annotations

import io

import pytest

from migrate.rdb import Entry, RdbReader
from migrate.rdb.records import Record
from tests.conftest import TESTDATA, needs_testdata
from tests.rdb.conftest import SavedRdb

ASSETS = TESTDATA / "redis-test-assets"


class Trickle(io.RawIOBase):
    """A stream whose ``read1`` hands out at most ``step`` bytes (a slow socket)."""

    def __init__(self, data: bytes, step: int):
        self.data, self.pos, self.step = data, 0, step

    def readable(self) -> bool:
        return True

    def read1(self, n: int = -1) -> bytes:
        out = self.data[self.pos:self.pos + min(n, self.step)]
        self.pos += len(out)
        return out

    read = read1


def _records(data: bytes, step: int | None, skim: bool) -> list[Record]:
    stream = io.BytesIO(data) if step is None else Trickle(data, step)
    reader = RdbReader(stream, skim=(lambda t, o: True) if skim else None)  # type: ignore
    return list(reader.records())


@pytest.mark.parametrize("skim", [False, True])
@pytest.mark.parametrize("step", [3, 4093])
def test_small_reads_give_the_same_records_as_big_ones(
        saved_rdbs: dict[str, SavedRdb], step: int, skim: bool) -> None:
    data = saved_rdbs["redis-8"].path.read_bytes()
    whole = _records(data, None, skim)
    trickled = _records(data, step, skim)
    assert trickled == whole
    entries = [r for r in whole if isinstance(r, Entry)]
    assert len({(e.db, e.key) for e in entries}) == 1500
    assert any(e.skimmed for e in entries) == skim


@needs_testdata
@pytest.mark.parametrize("step", [1, 5])
def test_small_reads_of_legacy_encodings(step: int) -> None:
    for name in ("encodings.rdb", "hash-zipmap.rdb", "list-quicklist.rdb"):
        data = (ASSETS / name).read_bytes()
        for skim in (False, True):
            assert _records(data, step, skim) == _records(data, None, skim), name
