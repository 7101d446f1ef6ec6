"""What a second ``kvmigrate cutover`` makes of the record a killed one left in cutover.json
(migrate/cutover/interrupted.py; the kills themselves: tests/faults/test_killed.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from migrate.cutover.interrupted import earlier_cutover, restart_options
from migrate.errors import KvmError


def _record(running: str | None, *done: str) -> dict[str, Any]:
    steps = [{"name": name, "status": "done", "started": 0.0,
              "detail": {"max_pause_ms": 3000} if name == "pause" else {}} for name in done]
    return {"ok": False, "running": running, "target": "redis://t:6379", "steps": steps}


def test_no_record_or_a_finished_one_is_no_killed_cutover(tmp_path: Path) -> None:
    assert earlier_cutover(None, tmp_path) is None
    assert earlier_cutover({**_record(None, "precheck", "pause"), "ok": True}, tmp_path) is None


def test_killed_before_the_pause_cuts_over_again(tmp_path: Path) -> None:
    note = earlier_cutover(_record("postponed", "precheck"), tmp_path)
    assert note == ("an earlier cut-over was stopped during step 'postponed', before "
                    "promotion: the sync kept the target in step; cutting over again")


def test_killed_in_the_pause_names_the_bound_that_ended_it(tmp_path: Path) -> None:
    note = earlier_cutover(_record("after final-offset", "precheck", "pause", "final-offset"),
                           tmp_path)
    assert note is not None
    assert note.startswith("an earlier cut-over was stopped after step 'final-offset', "
                           "before promotion: its write pause ended by the source's own "
                           "bound (3000 ms)")


def test_killed_after_promotion_and_fence_has_nothing_to_run(tmp_path: Path) -> None:
    with pytest.raises(KvmError) as raised:
        earlier_cutover(_record("offset-check", "pause", "promote", "fence"), tmp_path)
    assert raised.value.exit_code == 4
    assert "the cut-over took effect" in raised.value.message
    assert "redis://t:6379" in (raised.value.hint or "")


def test_killed_deleting_the_heartbeat_has_nothing_to_run(tmp_path: Path) -> None:
    """The heartbeat's DEL on the target comes after the unpause: the cut-over took effect."""
    with pytest.raises(KvmError) as raised:
        earlier_cutover(_record("drop-heartbeat", "pause", "promote", "fence", "offset-check",
                                "unpause"), tmp_path)
    assert "stopped during step 'drop-heartbeat'" in raised.value.message
    assert "the cut-over took effect" in raised.value.message


def test_killed_between_promotion_and_fence_says_what_is_left(tmp_path: Path) -> None:
    with pytest.raises(KvmError) as raised:
        earlier_cutover(_record("fence", "pause", "promote"), tmp_path)
    assert "the source was not fenced" in raised.value.message
    hint = raised.value.hint or ""
    assert "--resume" in hint and "cutover.json" in hint


def test_killed_in_the_fence_step_after_the_server_took_it(tmp_path: Path) -> None:
    """The CONFIG SET landed, the step's end was never recorded: the server is asked."""
    with pytest.raises(KvmError) as raised:
        earlier_cutover(_record("fence", "pause", "promote"), tmp_path, lambda: True)
    assert "the cut-over took effect" in raised.value.message


def test_killed_inside_promote_once_it_had_begun_says_what_is_left(tmp_path: Path) -> None:
    """A stop request (or REPLICAOF NO ONE) was made, its step's end never recorded: asked
    with the time the cut-over began, the kill counts as after promotion."""
    record = _record("promote", "precheck", "pause")
    record["steps"][1]["started"] = 1234.5
    asked: list[float] = []

    def begun(since: float) -> bool:
        asked.append(since)
        return True

    with pytest.raises(KvmError) as raised:
        earlier_cutover(record, tmp_path, promotion_begun=begun)
    assert asked == [0.0]  # the earliest step start (the precheck's)
    assert "during step 'promote': the target was promoted" in raised.value.message
    assert "the source was not fenced" in raised.value.message


def test_killed_inside_promote_before_it_began_cuts_over_again(tmp_path: Path) -> None:
    note = earlier_cutover(_record("promote", "precheck", "pause"), tmp_path,
                           promotion_begun=lambda _since: False)
    assert note is not None and "before promotion" in note


@pytest.mark.parametrize(("resumes", "beside", "options"), [
    (True, True, "--follow --resume`"),  # replica, scan: the cut-over stops the run
    (True, False, "--resume`"),  # native: the target replicates by itself
    (False, True, "--follow --flush-target`")])  # proxy mode cannot resume
def test_the_hint_starts_the_sync_again_as_its_mode_does(tmp_path: Path, resumes: bool,
                                                         beside: bool, options: str) -> None:
    with pytest.raises(KvmError) as raised:
        earlier_cutover(_record("fence", "pause", "promote"), tmp_path,
                        restart=restart_options(resumes, beside))
    assert f"--state {tmp_path} {options}" in (raised.value.hint or "")
