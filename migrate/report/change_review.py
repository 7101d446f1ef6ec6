"""The change-review report of a playbook dry run (or run): each step with the exact commands
it runs, the preflight findings, data size and estimated duration, the expected write pause,
risks, and the rollback plan. Gathering it only reads from the servers."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from migrate import __version__
from migrate.cutover.rollback import choose_path
from migrate.endpoint import Endpoint
from migrate.errors import KvmError
from migrate.orchestrate.runner import RunResult
from migrate.serverinfo import ServerIdentity, identify

# Rough rates behind the duration estimate (keys per second), measured on this project's
# 2-core machines: native REPLICAOF loaded 1,000,000 keys in 1.55 s (issue 8); a key-by-key
# logical copy (RedisShake) took 9.2 s for the same data.
RATES = {"native": 500_000, "logical": 100_000}


def server_facts(url: str | None) -> dict[str, Any] | None:
    if not url:
        return None
    ep = Endpoint.parse(url)
    try:
        client = ep.client(timeout=5)
        info = client.info()
    except KvmError as exc:
        return {"url": ep.display(), "error": exc.message}
    keys = sum(int(v["keys"]) for k, v in info.items() if k.startswith("db") and
               k[2:].isdigit() and isinstance(v, dict))  # Redis 8 adds db0_distrib_... dicts
    ident = identify(info)
    return {"url": ep.display(), "server": str(ident), "flavor": ident.flavor,
            "version": ident.version_text, "keys": keys,
            "used_memory": int(info.get("used_memory", 0)),
            "used_memory_human": info.get("used_memory_human"),
            "role": info.get("role"), "_identity": ident}


def build(result: RunResult, values: dict[str, str]) -> dict[str, Any]:
    source = server_facts(values.get("source"))
    target = server_facts(values.get("target"))
    findings: list[dict[str, Any]] = []
    for step in result.steps:
        if step.op == "preflight" and step.output.strip().startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                findings = json.loads(step.output).get("findings", [])
    pause_ms: int | None = None
    for step in result.steps:
        if step.op == "cutover":
            pause_ms = 2000
            for cmd in step.commands:
                parts = cmd.split()
                if "--max-pause-ms" in parts:
                    pause_ms = int(parts[parts.index("--max-pause-ms") + 1])
    estimate = None
    if source and "keys" in source:
        native_ok = bool(target and "_identity" in target and "_identity" in source and
                         target["_identity"].flavor != "dragonfly" and  # replica mode there
                         choose_path(target["_identity"], source["_identity"]).native)
        copies = any(step.op == "copy" for step in result.steps)
        path = "native" if native_ok and not copies else "logical"
        estimate = {"copy_path": path, "keys": source["keys"],
                    "seconds": max(round(source["keys"] / RATES[path], 1), 0.1),
                    "basis": f"{RATES[path]:,} keys/s ({path} copy on a 2-core machine)"}
    rollback = None
    to_dragonfly = any("--to dragonfly" in c for step in result.steps for c in step.commands)
    if source and target and "_identity" in source and "_identity" in target:
        new_id = target["_identity"]
        if to_dragonfly:  # the playbook's target kind decides, whatever stands in for it
            new_id = ServerIdentity("dragonfly", (1, 40), "1.40")
        rb = choose_path(source["_identity"], new_id)
        rollback = {"native": rb.native, "reason": rb.reason,
                    "how": "kvmigrate rollback --state STATE_DIR (playbook: rollback): "
                    + ("native reverse replication, then a guarded cut-over back" if rb.native
                       else "a reverse sync in proxy mode (the old primary replicates from "
                       "kvmigrate, read-only meanwhile, and loads the new primary's RDB "
                       "rewritten for it), then a guarded cut-over back"
                       if new_id.flavor != "dragonfly" else
                       "with --window-ms N: Dragonfly's writes paused for the whole copy "
                       "(SCAN + DUMP into an RDB the old primary replicates from kvmigrate), "
                       "then the switch back")}
    risks = [f"{f['severity']}: {f['title']} ({f['id']})" for f in findings
             if f.get("severity") in ("blocker", "warning")]
    for facts in (source, target):
        if facts:
            facts.pop("_identity", None)
    return {
        "kvmigrate_version": __version__, "generated": time.strftime(
            "%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "playbook": result.playbook, "dry_run": result.dry_run, "vars": result.vars,
        "source": source, "target": target, "estimate": estimate,
        "expected_write_pause_ms": pause_ms, "findings": findings, "risks": risks,
        "rollback": rollback, "steps": [s.to_dict() for s in result.steps],
        "ok": result.ok, "error": result.error,
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# Change review: playbook `{report['playbook']}`", ""]
    kind = "Dry run: nothing was changed on any server or host." if report["dry_run"] else \
        "Record of a run."
    lines += [f"{kind} Generated {report['generated']} by kvmigrate "
              f"{report['kvmigrate_version']}.", ""]
    lines += ["## Summary", ""]
    src, tgt = report.get("source") or {}, report.get("target") or {}
    lines.append(f"- Source: {src.get('url', '-')} ({src.get('server', src.get('error', '?'))}"
                 f", {src.get('keys', '?')} keys, {src.get('used_memory_human', '?')})")
    lines.append(f"- Target: {tgt.get('url', '-')} ({tgt.get('server', tgt.get('error', '?'))}"
                 f", {tgt.get('keys', '?')} keys)")
    est = report.get("estimate")
    if est:
        lines.append(f"- Estimated copy time: about {est['seconds']} s for {est['keys']:,} "
                     f"keys ({est['copy_path']} path; basis: {est['basis']})")
    if report["expected_write_pause_ms"] is not None:
        lines.append("- Expected write pause at cut-over: at most "
                     f"{report['expected_write_pause_ms']} ms (CLIENT PAUSE WRITE, bounded by "
                     "the server)")
    else:
        lines.append("- No cut-over step: writes stay stopped from the first approval gate "
                     "until clients are switched")
    counts = {s: sum(1 for f in report["findings"] if f.get("severity") == s)
              for s in ("blocker", "warning", "info")}
    lines.append(f"- Preflight: {counts['blocker']} blocker(s), {counts['warning']} "
                 f"warning(s), {counts['info']} info")
    lines += ["", "## Steps", ""]
    for i, step in enumerate(report["steps"], 1):
        lines.append(f"{i}. **{step['name']}** ({step['kind']} {step['op']}): {step['status']}"
                     + (f"; {step['note']}" if step.get("note") and (
                         step["status"] == "skipped" or "background" in step["note"]) else ""))
        for cmd in step["commands"]:
            lines.append(f"   - `{cmd}`")
    lines += ["", "## Risks", ""]
    lines += [f"- {r}" for r in report["risks"]] or ["- none found by preflight"]
    lines += ["", "## Preflight findings", ""]
    if not report["findings"]:
        lines.append("None (or no preflight step).")
    for f in report["findings"]:
        lines += [f"### {f.get('severity', '?').upper()}: {f.get('title', '')} (`{f.get('id')}`)",
                  ""] + ([str(f["detail"]), ""] if f.get("detail") else [])
        if f.get("remediation"):  # info findings often have none: no empty "Remedy:" line
            lines += [f"Remedy: {f['remediation']}", ""]
    lines += ["", "## Rollback plan", ""]
    rb = report.get("rollback")
    if rb:
        lines += [f"- {rb['reason']}", f"- How: {rb['how']}",
                  "- Until the cut-over the source is untouched and keeps serving; a failure "
                  "before promotion unpauses it."]
    else:
        lines.append("- Source or target unreachable: no rollback path computed.")
    lines += ["", "## Variables", ""]
    lines += [f"- `{k}` = `{v}`" for k, v in report["vars"].items()]
    return "\n".join(lines) + "\n"
