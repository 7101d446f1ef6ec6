"""The reader's checked skim (``RdbReader(checked=True)``: replica mode's only pass over a
live source's RDB, whose values go to the target as the bytes the source sent). On every
corpus file and on files lab servers wrote, and whatever the size of the reads under it,
each key comes out either stepped over, as exactly the bytes the full reader captures for
it, or decoded exactly as the full reader decodes it; a value that fails the checks a
server makes as it loads it, or is bigger than the bound, is never passed as bytes."""

from __future__ import annotations

import io

import pytest

from migrate.rdb import Entry, RdbReader
from migrate.rdb.errors import RdbFormatError
from migrate.rdb.records import Record
from migrate.rdb.types.skim import SKIMMABLE
from tests.conftest import TESTDATA, needs_testdata
from tests.rdb.conftest import SavedRdb
from tests.rdb.test_buffer_boundaries import Trickle

PASSED = frozenset(SKIMMABLE - {0, 7})  # as replica mode asks (strings and modules decoded)


def _read(data: bytes, *, checked: bool, raw_limit: int = 8 << 20,
          step: int | None = None) -> list[Record] | str:
    """The records, or why the reader refused the file."""
    stream = io.BytesIO(data) if step is None else Trickle(data, step)
    reader = RdbReader(stream, raw_limit=raw_limit, checked=checked,  # type: ignore[arg-type]
                       skim=(lambda t, o: t in PASSED) if checked else None)
    try:
        return list(reader.records())
    except RdbFormatError as exc:
        return f"refused: {exc.reason}"


def _compare(data: bytes, name: str, raw_limit: int = 8 << 20,
             step: int | None = None) -> tuple[int, int]:
    """(keys passed as bytes, keys decoded); fails on any difference from the full reader."""
    full = _read(data, checked=False, raw_limit=raw_limit)
    fast = _read(data, checked=True, raw_limit=raw_limit, step=step)
    if isinstance(full, str) or isinstance(fast, str):
        assert isinstance(full, str) and isinstance(fast, str), f"{name}: {full} / {fast}"
        return 0, 0
    passed = decoded = 0
    full_entries = iter(full)
    for rec in fast:
        want = next(full_entries)
        if isinstance(rec, Entry) and rec.skimmed:
            assert isinstance(want, Entry) and want.part == 0, f"{name}: {rec.key!r}"
            assert rec.raw is not None and len(rec.raw) <= raw_limit + 1, name
            if want.whole:
                assert want.raw == rec.raw, f"{name}: {rec.key!r}: other bytes"
            else:  # the full reader splits a big one into chunks (raw left out)
                while not want.final:
                    want = next(full_entries)
                    assert isinstance(want, Entry) and want.key == rec.key, name
                assert rec.raw is not None and len(rec.raw) == want.size, name
            assert (rec.db, rec.key, rec.type_code, rec.expire_ms, rec.idle_s, rec.freq) == \
                (want.db, want.key, want.type_code, want.expire_ms, want.idle_s, want.freq)
            passed += 1
        else:
            assert rec == want, f"{name}: {rec}"
            decoded += isinstance(rec, Entry) and rec.type_code in PASSED and rec.final
    assert next(full_entries, None) is None, name
    return passed, decoded


@needs_testdata
def test_every_corpus_file_gives_the_full_readers_keys() -> None:
    files = sorted(TESTDATA.rglob("*.rdb"))
    assert len(files) > 50
    verdicts = {f.name: _compare(f.read_bytes(), f.name) for f in files}
    assert sum(p for p, _ in verdicts.values()) > 300
    # a damaged ziplist and empty keys are decoded, so the full reader's verdict stands
    assert verdicts["corrupt_ziplist.rdb"][0] == 0
    assert verdicts["corrupt_empty_keys.rdb"][0] == 0


@pytest.mark.parametrize("step", [None, 3, 4093])
def test_files_lab_servers_wrote_whatever_the_reads(saved_rdbs: dict[str, SavedRdb],
                                                   step: int | None) -> None:
    for saved in saved_rdbs.values():
        passed, _ = _compare(saved.path.read_bytes(), saved.spec, step=step)
        assert passed > 500, saved.spec  # most of the 1,500 keys pass as bytes


def test_a_value_over_the_bound_is_decoded_in_chunks(saved_rdbs: dict[str, SavedRdb]) -> None:
    data = saved_rdbs["valkey-8.0"].path.read_bytes()
    passed, decoded = _compare(data, "valkey-8.0, 200-byte bound", raw_limit=200)
    assert passed > 100 and decoded > 20
