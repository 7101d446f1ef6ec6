"""``kvmigrate report``: what happened in a migration, for a change-review board. The data
is :func:`migrate.report.run_record.gather`'s (the JSON format); this module writes it as
Markdown or as one self-contained HTML page with the timeline chart
(:mod:`migrate.report.chart`)."""

from __future__ import annotations

import time
from typing import Any

from migrate.report import blocks as b
from migrate.report.chart import human, rate, svg

MAX_TABLE_SAMPLES = 24  # rows of the timeline table (the chart shows every sample)
FIGURE_NAMES = {"keys": "keys loaded or copied", "bytes_copied": "bytes of the initial copy",
                "commands": "commands replayed", "ops_per_s": "ops per second (last)",
                "lag_bytes": "lag (bytes, last)", "lag_ms": "lag (ms, last)",
                "target_errors": "commands the target refused", "reconnects": "link reconnects",
                "partial_resyncs": "partial resyncs", "copy_method": "copy method",
                "field_ttls_dropped": "hash field TTLs dropped (--allow-loss)",
                "stream_counters_dropped": "stream counters dropped (--allow-loss)"}


def when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + " UTC" if t else "-"


def _clock(t: float | None) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}" \
        if t else "-"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s"


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def _counters(counters: dict[str, Any]) -> str:
    return ", ".join(f"{k} {_num(v)}" for k, v in counters.items())


def title(report: dict[str, Any]) -> str:
    run = report["run"]
    return f"Migration report: {run.get('source', '?')} to {run.get('target', '?')}"


def _summary(report: dict[str, Any]) -> list[str]:
    run, cut, back = report["run"], report["cutover"], report["rollback"]
    items = [f"Mode: {run.get('mode', '?')}" + (f" ({report['reason']})" if report["reason"]
                                                else ""),
             f"Outcome of the sync: {report['outcome']}",
             f"From {when(report['started'])} to {when(report['ended'])} ("
             + duration((report["ended"] or 0) - (report["started"] or 0)
                        if report["started"] and report["ended"] else None) + ")"]
    if report["resumed"]:
        items.append(f"Resumed {report['resumed']} time(s)")
    if run.get("cluster"):
        items.append(f"Cluster source: {len(run.get('shards') or [])} shard(s)")
    if "keys" in report["figures"]:
        items.append(f"Keys loaded or copied: {_num(report['figures']['keys'])}")
    ver = report["verification"]
    if ver["sync_sample"]:
        items.append(f"Verification after catch-up: {ver['sync_sample']}")
    for what, rec in (("Cut-over", cut), ("Rollback", back)):
        if rec is None:
            continue
        if rec["ok"]:
            items.append(f"{what}: done, writes paused {_num(rec['paused_ms'])} ms; "
                         f"promoted at {when(rec['promoted_at'])}")
        elif rec.get("late_write_bytes") and rec.get("took_effect"):
            items.append(f"{what}: took effect (promoted at {when(rec['promoted_at'])}), but "
                         f"{_num(rec['late_write_bytes'])} bytes of writes reached the old "
                         "primary after the final offset and are not on the new one")
        else:
            items.append(f"{what}: did not complete ({rec['error'] or 'see its steps'})")
    if cut is None:
        items.append("Cut-over: none recorded in this state folder")
    return items


def _switch_blocks(what: str, rec: dict[str, Any]) -> list[b.Block]:
    out: list[b.Block] = [b.Heading(what)]
    result = "done" if rec["ok"] else (
        "took effect, with writes left on the old primary: " if rec.get("late_write_bytes")
        and rec.get("took_effect") else "failed: ") + ("" if rec["ok"] else str(rec["error"]))
    facts = [f"Result: {result}",
             f"Write pause: {_num(rec['paused_ms'])} ms"
             + (f", from {_clock(rec['pause_window']['start'])} to "
                f"{_clock(rec['pause_window']['end'])} UTC" if rec["pause_window"] else "")]
    if rec["final_verification"]:
        facts.append(f"Final verification during the pause: {rec['final_verification']}")
    if rec["final_offset"] is not None:
        facts.append(f"Final replication offset: {rec['final_offset']:,}")
    left = "the old primary" if what == "Cut-over" else "the primary rolled back from"
    if rec["fenced"]:
        facts.append(f"{left[0].upper()}{left[1:]} was fenced (its writes fail with "
                     "NOREPLICAS)")
    if rec["clients_left"]:
        facts.append(f"{rec['clients_left']} client(s) were still connected to {left}")
    out.append(b.Bullets(facts))
    out.append(b.Table(["step", "status", "at (UTC)", "took", "detail"],
                       [[s["name"], s["status"], _clock(s["started"]),
                         "-" if s["ms"] is None else f"{s['ms']:,.1f} ms",
                         _counters(s["detail"])] for s in rec["steps"]], numeric={3}))
    return out


def _commands_blocks(commands: dict[str, Any]) -> list[b.Block]:
    out: list[b.Block] = [b.Heading("Commands translated, dropped or refused")]
    rows = [[name, "translated", f"{n:,}", commands["translations"].get(name, "")]
            for name, n in sorted(commands["translated"].items())]
    rows += [[name, "dropped (--allow-loss)", f"{n:,}", ""]
             for name, n in sorted(commands["dropped"].items())]
    rows += [[f"{kind} values", "skipped (--allow-loss)", f"{n:,}", ""]
             for kind, n in sorted(commands["skipped_types"].items())]
    if rows:
        out.append(b.Table(["command", "what", "count", "became"], rows, numeric={2}))
    else:
        out.append(b.Para("No command of the source's stream needed translating, and none "
                          "was dropped."))
    refused = commands["refused_by_target"]
    out.append(b.Para("Commands the target refused: "
                      + ("not counted in this mode" if refused is None else f"{refused:,}")
                      + (" (a refusal stops the sync)" if refused == 0 else "")))
    if commands["dropped_keys_listed"]:
        out.append(b.Para(f"{commands['dropped_keys_listed']:,} dropped key(s) are listed by "
                          "name in the sync's status (--status-json), not here."))
    return out


def _timeline_table(samples: list[dict[str, Any]]) -> b.Table:
    """Every sample, or evenly spaced ones and the last. Where a mode measures no ops/s, the
    commands applied per second since the sample before stand in (marked ~)."""
    derived = dict(zip(range(1, len(samples)), (v for _t, v in rate(samples, "commands")),
                       strict=False))
    step = max(1, -(-len(samples) // MAX_TABLE_SAMPLES))
    shown = list(range(0, len(samples), step))
    if samples and shown[-1] != len(samples) - 1:
        shown.append(len(samples) - 1)
    t0 = samples[0]["t"] if samples else 0

    def ops(i: int) -> str:
        if samples[i].get("ops_per_s") is not None:
            return _num(samples[i]["ops_per_s"])
        value = derived.get(i)
        return "-" if value is None else f"~{value:,.1f}"

    return b.Table(["time (UTC)", "elapsed", "phase", "keys", "lag bytes", "lag ms", "ops/s",
                    "commands"],
                   [[_clock(s["t"]), duration(s["t"] - t0),
                     "/".join(str(s[k]) for k in ("phase", "sync_phase") if s.get(k)),
                     _num(s.get("keys")), _num(s.get("lag_bytes")), _num(s.get("lag_ms")),
                     ops(i), _num(s.get("commands"))] for i in shown for s in [samples[i]]],
                   numeric={1, 3, 4, 5, 6, 7})


def document(report: dict[str, Any], *, chart: bool) -> list[b.Block]:
    out: list[b.Block] = [
        b.Para(f"Generated {report['generated']} by kvmigrate {report['kvmigrate_version']} "
               f"from the state folder {report['state']} (the servers were not contacted)."),
        b.Heading("Summary"), b.Bullets(_summary(report))]
    samples = report["timeline"]["samples"]
    out.append(b.Heading("Timeline"))
    if samples:
        pauses = [(what, rec["pause_window"]["start"], rec["pause_window"]["end"],
                   rec["paused_ms"])
                  for what, rec in (("cut-over", report["cutover"]),
                                    ("rollback", report["rollback"]))
                  if rec and rec["pause_window"]]
        if chart:
            phases = [(p["name"], p["started"]) for p in report["phases"] if p["started"]]
            out.append(b.Figure(svg(samples, phases, pauses),
                                f"Lag and throughput, {len(samples)} samples (one every "
                                f"{report['timeline']['every_s']:g} s at most); dashed lines: "
                                "phases; shaded: the write pause."))
        else:
            step = max(1, -(-len(samples) // MAX_TABLE_SAMPLES))
            out.append(b.Para(f"{len(samples)} samples of the figures (one every "
                              f"{report['timeline']['every_s']:g} s at most); the HTML report "
                              "(--format html) charts them."
                              + (f" One row every {step} samples, and the last:"
                                 if step > 1 else "")))
        out.append(_timeline_table(samples))
    else:
        out.append(b.Para("No figures were sampled over time in this state folder (a run "
                          "recorded before kvmigrate kept a timeline)."))
    out += [b.Heading("Phases"),
            b.Table(["phase", "status", "started (UTC)", "ended (UTC)", "took", "figures"],
                    [[p["name"], p["status"] + (f": {p['error']}" if p["error"] else ""),
                      when(p["started"]), when(p["ended"]), duration(p["seconds"]),
                      _counters(p["counters"])] for p in report["phases"]], numeric={4})]
    out += [b.Heading("Figures at the end"),
            b.Table(["figure", "value"],
                    [[FIGURE_NAMES.get(k, k), _num(v) if k != "bytes_copied" else
                      f"{_num(v)} ({human(v)}B)"] for k, v in report["figures"].items()],
                    numeric={1})]
    if report["shards"]:
        out += [b.Heading("Shards"),
                b.Table(["shard", "source", "phase", "keys", "lag bytes", "commands",
                         "refused"],
                        [[str(r.get("shard")), str(r.get("source", "")), str(r.get("phase")),
                          _num(r.get("keys_loaded")), _num(r.get("lag_bytes")),
                          _num(r.get("commands")), _num(r.get("target_errors"))]
                         for r in report["shards"]], numeric={3, 4, 5, 6})]
    ver = report["verification"]
    out += [b.Heading("Verification"), b.Bullets([
        "After catch-up: " + (ver["sync_sample"] or "not run (--verify-sample 0)"),
        "During the cut-over's pause: " + (ver["at_cutover"] or "no final sample recorded")])]
    out += _commands_blocks(report["commands"])
    for what, key in (("Cut-over", "cutover"), ("Rollback", "rollback")):
        if report[key] is not None:
            out += _switch_blocks(what, report[key])
    return out


def markdown(report: dict[str, Any]) -> str:
    return b.markdown(title(report), document(report, chart=False))


def html(report: dict[str, Any]) -> str:
    return b.html(title(report), document(report, chart=True))
