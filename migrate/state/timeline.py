"""The figures of a run over time, for the report's chart (``kvmigrate report``): a bounded
sample kept beside the ledger in ``timeline.json``.

The ledger offers its live status each time it is saved (about once a second while a sync
runs); a sample is taken when ``every_s`` has passed since the last one, or when the phase
changed. At ``MAX_SAMPLES`` every other sample is dropped and ``every_s`` doubles, so a run of
any length keeps at most that many, evenly spread: one a second for the first ten minutes,
one every two seconds until twenty, and so on. No key names or URLs: figures only.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

MAX_SAMPLES = 600
FIRST_EVERY_S = 1.0
# the status fields sampled (what the chart and the report's table show)
FIELDS = ("phase", "sync_phase", "keys", "bytes_copied", "lag_bytes", "lag_ms", "ops_per_s",
          "commands")


class Timeline:
    def __init__(self, path: Path, every_s: float = FIRST_EVERY_S,
                 samples: list[dict[str, Any]] | None = None):
        self.path = path
        self.every_s = every_s
        self.samples = samples or []
        self._dirty = False

    @classmethod
    def load(cls, path: Path, *, keep: bool) -> Timeline:
        """The timeline in ``path`` when ``keep`` (a resumed run goes on with it), else a
        new one."""
        if keep:
            try:
                data = json.loads(path.read_text())
                return cls(path, float(data["every_s"]), list(data["samples"]))
            except (OSError, ValueError, KeyError, TypeError):
                pass
        return cls(path)

    def offer(self, status: dict[str, Any], now: float | None = None) -> None:
        """Sample ``status`` if it is time to (or its phase changed)."""
        now = time.time() if now is None else now
        sample = {k: status[k] for k in FIELDS if status.get(k) is not None}
        last = self.samples[-1] if self.samples else None
        if last is not None and now - last["t"] < self.every_s and all(
                last.get(k) == sample.get(k) for k in ("phase", "sync_phase")):
            return
        if not sample:
            return
        self.samples.append({"t": round(now, 3), **sample})
        if len(self.samples) > MAX_SAMPLES:
            self.samples = self.samples[::2]
            self.every_s *= 2
        self._dirty = True

    def save(self) -> None:
        """Write ``timeline.json`` (0600, through a temporary file) if anything was added."""
        if not self._dirty:
            return
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump({"every_s": self.every_s, "max_samples": MAX_SAMPLES,
                           "samples": self.samples}, fh, separators=(",", ":"), default=str)
            os.replace(tmp, self.path)
        except OSError:  # a full disk: said by the caller, no temporary file left behind
            tmp.unlink(missing_ok=True)
            raise
        self._dirty = False


def read_timeline(path: Path) -> dict[str, Any]:
    """``timeline.json`` as written (``{"every_s", "samples": [...]}``), or no samples."""
    try:
        data = json.loads(path.read_text())
        return {"every_s": data.get("every_s"), "samples": list(data.get("samples", []))}
    except (OSError, ValueError, AttributeError):
        return {"every_s": None, "samples": []}
