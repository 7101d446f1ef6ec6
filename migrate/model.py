"""Shared value types: severities and findings (used by preflight, config conversion, copy,
sync and reports). Feature packages share these, not each other's internals."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    BLOCKER = "blocker"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"blocker": 2, "warning": 1, "info": 0}[self.value]

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank


@dataclass
class Finding:
    """One reason a migration could lose data or break clients, with evidence and a remedy."""

    id: str  # stable, e.g. "rdb.version-gap"
    severity: Severity
    title: str
    detail: str = ""
    remediation: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # where the fact behind it comes from (doc, source file, "seen here")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        return data
