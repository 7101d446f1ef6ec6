"""Run the catalogue over one :class:`Context` and collect a :class:`Report`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from migrate import __version__
from migrate.model import Finding, Severity
from migrate.preflight.context import Context
from migrate.preflight.registry import load_catalogue

ORDER = [Severity.BLOCKER, Severity.WARNING, Severity.INFO]


@dataclass
class Report:
    source: dict[str, Any]
    target: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)
    scripts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, int]:
        counts = {s.value: 0 for s in ORDER}
        for f in self.findings:
            counts[f.severity.value] += 1
        return counts

    def at_or_above(self, threshold: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity.at_least(threshold)]

    def by_severity(self) -> list[tuple[Severity, list[Finding]]]:
        return [(s, [f for f in self.findings if f.severity == s]) for s in ORDER]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of the issue's contract."""
        return {
            "kvmigrate_version": __version__,
            "source": self.source,
            "target": self.target,
            "findings": [{"id": f.id, "severity": f.severity.value, "title": f.title,
                          "detail": f.detail, "remediation": f.remediation,
                          "evidence": {**f.evidence, "fact_source": f.source}}
                         for f in self.findings],
            "summary": self.summary,
        }


def run_checks(ctx: Context) -> list[Finding]:
    findings: list[Finding] = []
    for check in load_catalogue():
        findings.extend(check().run(ctx))
    findings.sort(key=lambda f: (-f.severity.rank, f.id))
    return findings


def preflight(ctx: Context) -> Report:
    source = ctx.source.summary()
    source["rdb_version"] = _rdb(ctx)
    target = ctx.target.summary()
    return Report(source=source, target=target, findings=run_checks(ctx),
                  scripts=[s.to_dict() for s in ctx.scripts])


def _rdb(ctx: Context) -> int | None:
    from migrate.compat.rdb import rdb_version_written

    return rdb_version_written(ctx.source_identity)
