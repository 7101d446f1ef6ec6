"""The request/acknowledge record between a running sync and a cut-over (files only: no
server is involved)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from migrate.errors import KvmError
from migrate.state.coordination import STOP, RequestWatcher, SyncControl


def test_a_stop_request_stops_the_run_and_is_answered_by_its_id(tmp_path: Path) -> None:
    stop = threading.Event()
    control = SyncControl(tmp_path)
    with RequestWatcher(tmp_path, stop) as watcher:
        request = control.request(STOP)
        assert stop.wait(10), "the watcher did not see the stop request"
        assert watcher.stop_request == request
        assert control.answer(request) is None  # not before the run has wound down
        watcher.acknowledge(None)
    answer = control.wait(request, 5)
    assert answer is not None and answer["status"] == "stopped" and answer["pid"] == os.getpid()


def test_a_request_left_from_an_earlier_run_is_not_answered(tmp_path: Path) -> None:
    control = SyncControl(tmp_path)
    old = control.request(STOP)
    stop = threading.Event()
    with RequestWatcher(tmp_path, stop) as watcher:
        watcher.poll()
        assert not stop.is_set() and watcher.stop_request is None
        watcher.acknowledge(None)
    assert control.answer(old) is None


def test_a_run_that_failed_answers_with_the_reason(tmp_path: Path) -> None:
    stop = threading.Event()
    control = SyncControl(tmp_path)
    with RequestWatcher(tmp_path, stop) as watcher:
        request = control.request(STOP)
        watcher.poll()
        watcher.acknowledge(KvmError("the target refused a write"))
    answer = control.wait(request, 5)
    assert answer == {**answer, "status": "failed", "reason": "the target refused a write"}


def test_an_unknown_request_is_answered_as_failed(tmp_path: Path) -> None:
    stop = threading.Event()
    control = SyncControl(tmp_path)
    with RequestWatcher(tmp_path, stop) as watcher:
        request = control.request("rewind")
        watcher.poll()
    answer = control.answer(request)
    assert answer is not None and answer["status"] == "failed" and "rewind" in answer["reason"]
    assert not stop.is_set()


def test_no_answer_within_the_bound_is_none(tmp_path: Path) -> None:
    control = SyncControl(tmp_path)
    assert control.wait(control.request(STOP), 0.05) is None
