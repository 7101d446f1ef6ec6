"""How far a sync is and when it will be there: a total, a percentage and an ETA from the
figures the engines publish, in every mode.

What is measured depends on the phase: the RDB transfer (``full-sync``) counts bytes out of
the RDB's size (the bulk length the source announced); loading and a scan's initial copy
count keys out of the source's key count (INFO keyspace, taken when the sync started); when
the RDB's size is unknown (a diskless transfer) the source's ``used_memory`` stands in, as an
estimate, and says so. Rates are averaged over the phase so far; ``ops_per_s`` is the rate of
commands replayed (replica, proxy) and ``stream_bytes_per_s`` the rate the source's
replication offset moves (every mode that has one).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

KEY_PHASES = ("loading", "initial-copy")


def human_bytes(n: float) -> str:
    """1,234 B, 16.5 MB: decimal units, as sizes are quoted in the docs and by the servers."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} TB"


def clock(seconds: float) -> str:
    """0:01:05"""
    return str(timedelta(seconds=max(0, round(seconds))))


def describe(status: dict[str, Any]) -> str | None:
    """The progress fields as one phrase: ``loading: 10,000/100,000 keys (10%), ETA 0:00:04``,
    ``full-sync: 6.8 MB/~24.7 MB (27%, estimated total)``, ``caught up (100%)``."""
    what, percent = status.get("progress"), status.get("percent")
    if not what:
        return None
    text = str(what)
    if what in ("keys", "bytes") and percent is None:  # no total: the amount so far
        done = status.get("progress_done") or 0
        return f"{status.get('sync_phase')}: " + (human_bytes(done) if what == "bytes"
                                                   else f"{done:,.0f} keys")
    if what in ("keys", "bytes") and percent is not None:
        done, total = status.get("progress_done") or 0, status.get("progress_total") or 0
        approx = "~" if status.get("progress_estimated") else ""
        amount = (f"{human_bytes(done)}/{approx}{human_bytes(total)}" if what == "bytes"
                  else f"{done:,.0f}/{approx}{total:,.0f} keys")
        text = (f"{status.get('sync_phase')}: {amount} ({percent:.0f}%"
                + (", estimated total" if approx else "") + ")")
    elif percent is not None:
        text += f" ({percent:.0f}%)"
    eta = status.get("eta_s")
    if eta is not None:
        text += f", ETA {clock(eta)}"
    return text


def source_totals(info_keyspace: dict[str, Any], used_memory: int | None) -> dict[str, Any]:
    """``keys_total`` (every database's keys) and ``bytes_estimate`` (the source's
    used_memory) to publish once at the start of a sync."""
    keys = 0
    for name, value in info_keyspace.items():
        if str(name).startswith("db"):
            keys += int(value["keys"] if isinstance(value, dict) else value)
    return {"keys_total": keys, "bytes_estimate": used_memory}


class ProgressEstimator:
    """Fed the status now and then (``figures(status)``); answers the progress fields."""

    def __init__(self) -> None:
        self._phase: tuple[str, str] | None = None
        self._start: tuple[float, float] = (0.0, 0.0)
        self._rates: dict[str, tuple[float, float, float | None]] = {}

    def _rate(self, name: str, value: float, now: float) -> float | None:
        """Per second, over looks at least a second apart (the last rate in between)."""
        then = self._rates.get(name)
        if then is None or value < then[1]:  # the first look, or a counter that restarted
            self._rates[name] = (now, value, None)
            return None
        if now - then[0] < 0.9:
            return then[2]
        rate = (value - then[1]) / (now - then[0])
        self._rates[name] = (now, value, rate)
        return rate

    def figures(self, status: dict[str, Any], now: float | None = None) -> dict[str, Any]:
        now = time.monotonic() if now is None else now
        out: dict[str, Any] = {}
        commands = status.get("commands")
        if isinstance(commands, int):
            rate = self._rate("commands", commands, now)
            if rate is not None:
                out["ops_per_s"] = round(rate, 1)
        offset = status.get("source_offset")
        if isinstance(offset, int):
            rate = self._rate("offset", offset, now)
            if rate is not None:
                out["stream_bytes_per_s"] = round(rate)
        out.update(self._progress(status, now))
        return out

    def _progress(self, status: dict[str, Any], now: float) -> dict[str, Any]:
        phase = str(status.get("sync_phase") or "")
        done: float | None
        total: float | None
        estimated = False
        if phase in ("full-sync", "rewriting"):
            what, done = "bytes", status.get("bytes_copied")
            total = status.get("bytes_total")
            if not isinstance(total, int) or total <= 0:
                total, estimated = status.get("bytes_estimate"), True
        elif phase in KEY_PHASES or (phase == "catch-up" and status.get("shards")
                                     and status.get("keys", 0) < (status.get("keys_total") or 0)):
            # a cluster's shards load during its catch-up
            what, done, total = "keys", status.get("keys"), status.get("keys_total")
        elif phase in ("streaming", "catch-up", "following", "stopped"):
            caught_up = status.get("lag_bytes") == 0
            return {"progress": "caught up" if caught_up else "streaming",
                    "percent": 100 if caught_up else None, "eta_s": None}
        else:
            return {"progress": None, "percent": None, "eta_s": None}
        if not isinstance(done, int | float):
            return {"progress": None, "percent": None, "eta_s": None}
        if not isinstance(total, int | float) or total <= 0:  # how much, out of what unknown
            return {"progress": what, "progress_done": done, "progress_total": None,
                    "percent": None, "eta_s": None}
        key = (phase, what)
        if self._phase != key:
            self._phase, self._start = key, (now, float(done))
        percent = min(100.0, 100.0 * done / total)
        eta: float | None = None
        elapsed = now - self._start[0]
        if elapsed > 0.5 and done > self._start[1]:
            rate = (done - self._start[1]) / elapsed
            eta = max(0.0, (total - done) / rate)
        return {"progress": what, "progress_done": done, "progress_total": total,
                "progress_estimated": estimated, "percent": round(percent, 1),
                "eta_s": None if eta is None else round(eta)}
