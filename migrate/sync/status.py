"""Live status: kept in the ledger, handed to the observer and rewritten into
``--status-json FILE`` every second (atomically, so a reader never sees half a file)."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

from migrate.state.ledger import Ledger, write_json_atomic
from migrate.sync.options import Observer
from migrate.sync.progress import ProgressEstimator


class StatusPublisher:
    def __init__(self, ledger: Ledger, observer: Observer, status_json: Path | None,
                 interval: float = 1.0):
        self.ledger = ledger
        self.observer = observer
        self.status_json = status_json
        self.interval = interval
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.progress = ProgressEstimator()
        self.disk_error: OSError | None = None  # the status thread could not save

    def update(self, **fields: Any) -> None:
        if self.disk_error is not None:  # said by the run's own thread, in one line
            raise self.disk_error
        with self._lock:
            self.ledger.update_status(**fields)

    def publish(self) -> None:
        with self._lock:
            figures = self.progress.figures(self.ledger.snapshot()["status"])
            self.ledger.update_status(**figures)  # total, percentage, ETA, rates
            snapshot = self.ledger.snapshot()
            self.ledger.save()
        self.observer.status(snapshot["status"])
        if self.status_json is not None:
            with contextlib.suppress(OSError):
                write_json_atomic(self.status_json, snapshot)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.publish()
            except OSError as exc:  # a full or read-only state folder: the run stops on it
                self.disk_error = exc
                return

    def __enter__(self) -> StatusPublisher:
        self.publish()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.publish()
