"""The fast walk (migrate.rdb.walk) against the full reader: on every RDB of the shared
corpora and on files real lab servers wrote, it counts what the reader counts, or says it
does not cover the file (NotWalked), and it never accepts a file the reader refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrate.rdb.errors import RdbFormatError
from migrate.rdb.summary import TOP, RdbSummary, summarize
from migrate.rdb.walk import NotWalked, walk
from tests.conftest import TESTDATA, needs_testdata
from tests.rdb.conftest import SavedRdb

FIELDS = ("keys", "by_db", "by_type", "by_encoding", "type_codes", "with_ttl", "expired",
          "earliest_expiry_ms", "latest_expiry_ms", "functions", "slot_info",
          "seconds_expiry")
NOW_MS = 1_700_000_000_000


def _compare(path: Path) -> str:
    """'same', 'not walked' or 'both refuse'; fails on any difference."""
    try:
        full: RdbSummary | None = summarize(path.open("rb"), now_ms=NOW_MS)
    except RdbFormatError:
        full = None
    try:
        fast = walk(path, now_ms=NOW_MS)
    except NotWalked:
        return "not walked"
    except RdbFormatError:
        assert full is None, f"{path.name}: the walk refuses a file the reader accepts"
        return "both refuse"
    assert full is not None, f"{path.name}: the walk accepts a file the reader refuses"
    for name in FIELDS:
        assert getattr(fast, name) == getattr(full, name), f"{path.name}: {name}"
    if len(full.biggest) < TOP:  # sizes count the expire prefix here, not there
        assert {k.key for k in fast.biggest} == {k.key for k in full.biggest}, path.name
    assert fast.aux == full.aux and fast.producer == full.producer, path.name
    return "same"


@needs_testdata
def test_every_corpus_file_is_walked_as_the_reader_reads_it_or_left_to_it() -> None:
    files = sorted(TESTDATA.rglob("*.rdb"))
    assert len(files) > 50
    verdicts = {f.name: _compare(f) for f in files}
    assert list(verdicts.values()).count("same") > 40
    # a damaged container (Redis's corrupt_ziplist) and empty keys are left to the reader,
    # which names the defect, or counts the keys a server skips
    assert verdicts["corrupt_ziplist.rdb"] == "not walked"
    assert verdicts["corrupt_empty_keys.rdb"] == "not walked"


def test_files_lab_servers_wrote_are_walked(saved_rdbs: dict[str, SavedRdb]) -> None:
    verdicts = {spec: _compare(saved.path) for spec, saved in saved_rdbs.items()}
    # Redis 8 and Valkey 9 hold hashes with field TTLs: left to the reader
    assert verdicts == {"redis-7.0": "same", "redis-8": "not walked",
                        "valkey-8.0": "same", "valkey-9": "not walked"}


@pytest.mark.parametrize("cut", [10, 200, 5000, -9, -1])
def test_a_truncated_file_is_refused(saved_rdbs: dict[str, SavedRdb], tmp_path: Path,
                                     cut: int) -> None:
    data = saved_rdbs["valkey-8.0"].path.read_bytes()
    short = tmp_path / "short.rdb"
    short.write_bytes(data[:cut])
    with pytest.raises(RdbFormatError):
        walk(short)


def test_the_walk_reports_how_far_it_got(saved_rdbs: dict[str, SavedRdb]) -> None:
    path = saved_rdbs["valkey-8.0"].path
    seen: list[int] = []
    walk(path, advance=seen.append)
    assert seen == sorted(seen) and seen[-1] == path.stat().st_size


def test_a_type_not_accepted_stops_the_walk(saved_rdbs: dict[str, SavedRdb]) -> None:
    with pytest.raises(NotWalked, match="type 0"):
        walk(saved_rdbs["redis-7.0"].path, accept=lambda type_code: type_code != 0)
