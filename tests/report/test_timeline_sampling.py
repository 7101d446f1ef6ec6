"""The ledger's timeline stays bounded however long a run lasts (figures only, no server)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from migrate.state.timeline import MAX_SAMPLES, Timeline


def test_samples_are_spaced_and_halved_when_full(tmp_path: Path) -> None:
    timeline = Timeline(tmp_path / "timeline.json")
    status = {"phase": "follow", "sync_phase": "following", "lag_bytes": 0, "secret": "x"}
    for tenth in range(10 * 3 * MAX_SAMPLES):  # offered ten times a second for 3 x the cap
        timeline.offer({**status, "commands": tenth}, now=1000 + tenth / 10)
    assert MAX_SAMPLES // 2 <= len(timeline.samples) <= MAX_SAMPLES
    assert timeline.every_s == 4.0  # halved twice: 1 s, then 2 s, then 4 s
    spacing = {round(b["t"] - a["t"], 1) for a, b in zip(timeline.samples,
                                                          timeline.samples[1:], strict=False)}
    assert spacing == {4.0}
    assert "secret" not in timeline.samples[0]  # only the figures it knows
    timeline.save()
    saved = tmp_path / "timeline.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert len(json.loads(saved.read_text())["samples"]) == len(timeline.samples)
    again = Timeline.load(saved, keep=True)  # a resumed run goes on with it
    assert again.every_s == 4.0 and again.samples == timeline.samples


def test_a_phase_change_is_sampled_at_once(tmp_path: Path) -> None:
    timeline = Timeline(tmp_path / "timeline.json")
    timeline.offer({"phase": "catch-up", "keys": 1}, now=10.0)
    timeline.offer({"phase": "catch-up", "keys": 2}, now=10.2)  # too soon: skipped
    timeline.offer({"phase": "verify", "keys": 2}, now=10.3)
    assert [(s["phase"], s["keys"]) for s in timeline.samples] == [("catch-up", 1),
                                                                   ("verify", 2)]
