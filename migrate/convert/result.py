"""What a conversion produced: the converted text, each directive's fate, and the findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from migrate.convert.document import Directive
from migrate.errors import ExitCode
from migrate.model import Finding, Severity


class Fate(StrEnum):
    MAPPED = "mapped"  # same meaning under the same name
    RENAMED = "renamed"  # same meaning under the target's name
    CHANGED = "changed"  # converted: the value, the unit or the meaning differs
    DROPPED = "dropped"  # not written: the target has no use for it (finding says why)
    UNSUPPORTED = "unsupported"  # not written, and the target lacks what it asked for
    OVERRIDDEN = "overridden"  # a later line of the same directive wins (as in Redis)


@dataclass
class DirectiveFate:
    directive: Directive
    fate: Fate
    target: str = ""  # the name written (directive or flag)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = self.directive
        return {"file": d.file, "line": d.line, "directive": d.name, "args": d.masked_args(),
                "fate": self.fate.value, "target": self.target, "note": self.note}


@dataclass
class Conversion:
    source: str
    target: str  # "valkey" or "dragonfly"
    target_version: str
    valid_for: str = ""  # "for every supported Valkey (8.0, 8.1, 9.1); ..." (compat.versions)
    text: str = ""
    fates: list[DirectiveFate] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = {f.value: 0 for f in Fate}
        for fate in self.fates:
            counts[fate.fate.value] += 1
        return counts

    @property
    def blocked(self) -> bool:
        return any(f.severity is Severity.BLOCKER for f in self.findings)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.FINDINGS if self.blocked else ExitCode.OK

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target,
                "target_version": self.target_version, "valid_for": self.valid_for,
                "counts": self.counts(),
                "blocked": self.blocked,
                "directives": [f.to_dict() for f in self.fates],
                "findings": [f.to_dict() for f in self.findings]}


def finding(id_: str, severity: Severity, title: str, d: Directive | None, *, detail: str = "",
            remediation: str = "", source: str = "") -> Finding:
    """A finding tied to a directive's file and line; its evidence never holds a secret."""
    evidence: dict[str, Any] = {}
    if d is not None:
        evidence = {"file": d.file, "line": d.line, "directive": d.name,
                    "args": d.masked_args()}
        title = f"{d.where}: {title}"
    return Finding(id=id_, severity=severity, title=title, detail=detail,
                   remediation=remediation, evidence=evidence, source=source)
