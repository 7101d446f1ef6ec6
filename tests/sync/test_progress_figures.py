"""The arithmetic of the sync's progress (migrate.sync.progress): what a percentage is of in
each phase, an estimated total said to be one, the ETA from the phase's own rate. The
figures come from real runs in tests/test_progress.py; here the clock is given, so the ETA
is exact."""

from __future__ import annotations

from migrate.sync.progress import ProgressEstimator, describe, source_totals


def test_source_totals_add_up_every_database() -> None:
    keyspace = {"db0": {"keys": 90, "expires": 3}, "db2": {"keys": 10, "expires": 0}}
    assert source_totals(keyspace, 123_456) == {"keys_total": 100, "bytes_estimate": 123_456}


def test_loading_counts_keys_out_of_the_source_keys_with_an_eta() -> None:
    est = ProgressEstimator()
    status = {"sync_phase": "loading", "keys": 10_000, "keys_total": 100_000}
    first = est.figures(status, now=100.0)
    assert first["percent"] == 10 and first["eta_s"] is None  # no rate yet
    later = est.figures({**status, "keys": 30_000}, now=110.0)  # 2,000 keys/s
    assert later["percent"] == 30 and later["eta_s"] == 35
    assert describe({**status, **later}) == "loading: 30,000/100,000 keys (30%), ETA 0:00:35"


def test_a_diskless_transfer_is_measured_against_used_memory_and_says_so() -> None:
    est = ProgressEstimator()
    status = {"sync_phase": "full-sync", "bytes_copied": 5_000_000, "bytes_total": None,
              "bytes_estimate": 20_000_000}
    figures = est.figures(status, now=0.0)
    assert figures["progress_estimated"] and figures["percent"] == 25
    assert describe({**status, **figures}) == \
        "full-sync: 5.0 MB/~20.0 MB (25%, estimated total)"
    sized = est.figures({**status, "bytes_total": 10_000_000}, now=1.0)
    assert not sized["progress_estimated"] and sized["percent"] == 50


def test_streaming_is_100_percent_only_when_caught_up() -> None:
    est = ProgressEstimator()
    behind = est.figures({"sync_phase": "streaming", "lag_bytes": 4096}, now=0.0)
    assert behind["percent"] is None and describe(behind) == "streaming"
    caught = est.figures({"sync_phase": "streaming", "lag_bytes": 0}, now=1.0)
    assert caught["percent"] == 100 and describe(caught) == "caught up (100%)"


def test_rates_of_replayed_commands_and_of_the_stream() -> None:
    est = ProgressEstimator()
    est.figures({"commands": 100, "source_offset": 1_000}, now=0.0)
    rates = est.figures({"commands": 600, "source_offset": 51_000}, now=2.0)
    assert rates["ops_per_s"] == 250 and rates["stream_bytes_per_s"] == 25_000
