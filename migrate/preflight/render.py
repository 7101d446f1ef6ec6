"""Render a preflight :class:`Report` as Markdown: a change-review document."""

from __future__ import annotations

import json
from typing import Any

from migrate.preflight.runner import Report


def _fmt(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def to_markdown(report: Report, *, fail_on: str = "blocker") -> str:
    src, tgt, counts = report.source, report.target, report.summary
    target_name = f"{tgt['flavor']} {tgt['version']}" + ("" if tgt.get("live")
                                                           else " (from the catalogue)")
    lines = [
        "# Preflight: migration change review", "",
        f"- Source: {src['endpoint']} ({src['flavor']} {src['version']}, {src['mode']}, "
        f"{src['keys']:,} keys)",
        f"- Target: {tgt.get('endpoint', '') + ' ' if tgt.get('live') else ''}{target_name}",
        f"- kvmigrate {report.to_dict()['kvmigrate_version']}; threshold --fail-on {fail_on}",
        "", "## Summary", "",
        "| blockers | warnings | info |", "|---:|---:|---:|",
        f"| {counts['blocker']} | {counts['warning']} | {counts['info']} |", "",
    ]
    if counts["blocker"]:
        lines.append(f"**Not ready**: {counts['blocker']} blocker(s) must be resolved first.")
    else:
        lines.append("**No blockers.** Review the warnings before approving the change.")
    lines.append("")
    for severity, findings in report.by_severity():
        if not findings:
            continue
        lines += [f"## {severity.value.capitalize()}s ({len(findings)})", ""]
        for f in findings:
            lines += [f"### `{f.id}`: {f.title}", ""]
            if f.detail:
                lines += [f.detail, ""]
            if f.evidence:
                lines += ["Evidence:", ""]
                lines += [f"- {k}: {_fmt(v)}" for k, v in f.evidence.items()]
                lines.append("")
            if f.remediation:
                lines += [f"Remedy: {f.remediation}", ""]
            if f.source:
                lines += [f"Source: {f.source}", ""]
    lines += ["## Source facts", ""]
    lines += [f"- {k}: {_fmt(v)}" for k, v in src.items()]
    lines += ["", "## Target facts", ""]
    lines += [f"- {k}: {_fmt(v)}" for k, v in tgt.items()]
    if report.scripts:
        lines += ["", "## Lua scripts analysed", ""]
        for s in report.scripts:
            verdict = "parse error: " + s["parse_error"] if s["parse_error"] else \
                (f"{len(s['undeclared'])} undeclared key access(es)" if s["undeclared"]
                 else "keys declared")
            lines.append(f"- {s['name']} ({s['kind']}): {verdict}")
    return "\n".join(lines) + "\n"
