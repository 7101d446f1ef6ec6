"""What happened in a migration, read from its ``--state DIR`` (nothing is asked of any
server): the sync's ledger (phases, figures, verification, commands translated or dropped),
its timeline (the figures sampled over time), and the cut-over's and rollback's records (the
write pause). The result is the JSON report; :mod:`migrate.report.timeline` renders it.

Every string is passed through URL masking, and client lists are reduced to counts: the
report is made to be attached to a change ticket.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from migrate import __version__
from migrate.endpoint import mask_urls_in_text
from migrate.errors import UsageError
from migrate.state.paths import CUTOVER_FILE, LEDGER_FILE, ROLLBACK_FILE, TIMELINE_FILE
from migrate.state.timeline import read_timeline

FORMAT = 1
# the final status figures shown, in this order (those the mode has)
FIGURES = ("keys", "bytes_copied", "commands", "ops_per_s", "lag_bytes", "lag_ms",
           "target_errors", "reconnects", "partial_resyncs", "field_ttls_dropped",
           "stream_counters_dropped", "copy_method")
RUN_FIELDS = ("source", "target", "mode", "cluster", "shards", "match", "db_map")


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} is not a kvmigrate record")
    return data


def masked(value: Any) -> Any:
    """``value`` with the password of every URL in every string masked."""
    if isinstance(value, str):
        return mask_urls_in_text(value)
    if isinstance(value, dict):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v) for v in value]
    return value


def _scalars(counters: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in counters.items() if isinstance(v, int | float | str | bool)}


def _phases(ledger: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for p in ledger.get("phases", []):
        started, ended = p.get("started"), p.get("ended")
        rows.append({"name": p.get("name"), "status": p.get("status"), "started": started,
                     "ended": ended,
                     "seconds": round(ended - started, 3) if started and ended else None,
                     "counters": _scalars(p.get("counters") or {}), "error": p.get("error")})
    return rows


def _commands(status: dict[str, Any]) -> dict[str, Any]:
    """Commands translated for the target or dropped (allowed losses), the sync's and, for a
    cluster, every shard's together."""
    rows = [status, *(status.get("shards") or [])]
    translated: dict[str, int] = {}
    dropped: dict[str, int] = {}
    for row in rows:
        for name, n in (row.get("translated_commands") or {}).items():
            translated[name] = translated.get(name, 0) + int(n)
        for name, n in (row.get("dropped_commands") or {}).items():
            dropped[name] = dropped.get(name, 0) + int(n)
    refused = status.get("target_errors")
    if refused is None and status.get("shards"):
        refused = sum(int(r.get("target_errors") or 0) for r in status["shards"])
    return {"translated": translated, "translations": dict(status.get("translations") or {}),
            "dropped": dropped, "dropped_keys_listed": len(status.get("dropped_keys") or []),
            "refused_by_target": refused,
            "skipped_types": dict(status.get("skipped_types") or {})}


def _switch(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """A cut-over's or rollback's record: its steps, and the write pause as a window."""
    if record is None:
        return None
    steps = [{"name": s.get("name"), "status": s.get("status"), "started": s.get("started"),
              "ended": s.get("ended"),
              "ms": round((s["ended"] - s["started"]) * 1000, 1)
              if s.get("started") and s.get("ended") else None,
              "detail": _scalars(s.get("detail") or {})}
             for s in record.get("steps", [])]
    pause = next((s for s in steps if s["name"] == "pause"), None)
    unpause = next((s for s in steps if s["name"] == "unpause"), None)
    window = None
    if pause and pause["started"]:
        end = unpause["ended"] if unpause else pause["ended"]
        window = {"start": pause["started"], "end": end}
    verify = next((s for s in steps if s["name"] == "final-verify"), None)
    fence = record.get("fence") or {}
    return {"ok": bool(record.get("ok")), "error": record.get("error"),
            "paused_ms": record.get("paused_ms"), "pause_window": window,
            "promoted_at": record.get("promoted_at"), "final_offset": record.get("final_offset"),
            "final_verification": verify["detail"].get("summary") if verify else None,
            "took_effect": bool(record.get("took_effect") or record.get("ok")),
            "late_write_bytes": int(record.get("late_write_bytes") or 0),
            "fenced": bool(fence), "fenced_primaries": len(record.get("fences") or []),
            "clients_left": len(record.get("clients_left") or []), "steps": steps}


def _verification(ledger: dict[str, Any], cutover: dict[str, Any] | None) -> dict[str, Any]:
    phase = next((p for p in ledger.get("phases", []) if p.get("name") == "verify"), None)
    counters = (phase or {}).get("counters") or {}
    return {"sync_sample": ledger.get("status", {}).get("verification"),
            "status": (phase or {}).get("status"), "keys": counters.get("keys"),
            "written_keys": counters.get("written_keys"),
            "mismatches": counters.get("mismatches"),
            "at_cutover": cutover.get("final_verification") if cutover else None}


def _outcome(ledger: dict[str, Any], phases: list[dict[str, Any]]) -> str:
    status = ledger.get("status", {}).get("phase")
    if status in ("done", "verification-failed"):
        return str(status)
    last = phases[-1] if phases else None
    if last is None:
        return "not started"
    return f"{last['status']} in {last['name']}" if last["status"] != "done" else \
        f"stopped after {last['name']}"


def gather(root: Path) -> dict[str, Any]:
    """The report of the migration recorded in ``root``."""
    ledger = _read(root / LEDGER_FILE)
    if ledger is None:
        raise UsageError(f"no sync ledger in {root} ({LEDGER_FILE} missing)",
                         "give the --state DIR of a `kvmigrate sync` run")
    status = ledger.get("status") or {}
    phases = _phases(ledger)
    cutover = _switch(_read(root / CUTOVER_FILE))
    rollback = _switch(_read(root / ROLLBACK_FILE))
    timeline = read_timeline(root / TIMELINE_FILE)
    ends = [p["ended"] for p in phases if p["ended"]] + \
        [s["ended"] for rec in (cutover, rollback) if rec for s in rec["steps"] if s["ended"]]
    figures = {k: status[k] for k in FIGURES if status.get(k) is not None}
    copied = [s["bytes_copied"] for s in timeline["samples"]
              if isinstance(s.get("bytes_copied"), int)]
    if copied and max(copied) > int(figures.get("bytes_copied") or 0):
        figures["bytes_copied"] = max(copied)  # the count some modes reset once loaded
    report = {
        "report": "kvmigrate migration", "format": FORMAT, "kvmigrate_version": __version__,
        "generated": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "state": str(root),
        "run": {k: ledger.get("run", {}).get(k) for k in RUN_FIELDS
                if ledger.get("run", {}).get(k) not in (None, "", [], {})},
        "reason": status.get("reason"), "outcome": _outcome(ledger, phases),
        "started": ledger.get("created"), "ended": max(ends) if ends else ledger.get("updated"),
        "resumed": ledger.get("resumed", 0), "phases": phases,
        "figures": figures,
        "verification": _verification(ledger, cutover),
        "commands": _commands(status), "cutover": cutover, "rollback": rollback,
        "shards": [{k: v for k, v in row.items() if k not in ("translated_commands",
                                                              "dropped_commands")}
                   for row in status.get("shards") or []],
        "timeline": timeline,
    }
    return masked(report)
