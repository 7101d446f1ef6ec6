"""What verification reports: mismatches (which key, which database, what differs) and counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Keys kvmigrate itself writes (the sync heartbeat); verification never compares them.
INTERNAL_PREFIX = b"__kvmigrate:"
HEARTBEAT_KEY = b"__kvmigrate:heartbeat"

KINDS = ("missing", "extra", "type", "value", "ttl", "field-ttl", "stream", "count")


@dataclass(frozen=True)
class Mismatch:
    db: int  # the source database (the target's is db_map[db])
    key: bytes
    kind: str  # one of KINDS
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"db": self.db, "key": show_key(self.key), "kind": self.kind,
                "detail": self.detail}


@dataclass
class DbCount:
    source_db: int
    target_db: int
    source_keys: int
    target_keys: int
    moving: bool = False  # writes moved the source's count past the target's while compared

    @property
    def ok(self) -> bool:
        return self.source_keys == self.target_keys or self.moving


@dataclass
class VerifyReport:
    mode: str  # "sample" or "full"
    keys_checked: int = 0
    counts: list[DbCount] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    unlisted_mismatches: int = 0  # beyond the listing limit
    rechecked: int = 0  # suspects looked at again after the lag window
    cleared_on_recheck: int = 0  # suspects that matched on a re-check (writes in flight)
    unsettled: list[Mismatch] = field(default_factory=list)  # changed at every look
    written_checked: int = 0  # of keys_checked: keys the source's stream wrote
    # differences of a class of loss the user allowed (--allow-loss): listed, not matches,
    # and not counted as mismatches either
    known: list[Mismatch] = field(default_factory=list)
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    # --max-ops-per-s: what the limiter did, and the source's PING round trips meanwhile
    throttle: dict[str, Any] | None = None
    source_latency: dict[str, Any] | None = None

    @property
    def total_mismatches(self) -> int:
        return len(self.mismatches) + self.unlisted_mismatches

    @property
    def ok(self) -> bool:
        return self.total_mismatches == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "mode": self.mode, "keys_checked": self.keys_checked,
            "written_keys_checked": self.written_checked,
            "known_differences": [m.to_dict() for m in self.known],
            "mismatches_total": self.total_mismatches,
            "counts": [{"source_db": c.source_db, "target_db": c.target_db,
                        "source_keys": c.source_keys, "target_keys": c.target_keys,
                        "ok": c.ok, "moving": c.moving} for c in self.counts],
            "mismatches": [m.to_dict() for m in self.mismatches],
            "rechecked": self.rechecked, "cleared_on_recheck": self.cleared_on_recheck,
            "unsettled": [m.to_dict() for m in self.unsettled],
            "elapsed_s": round(self.elapsed_s, 3), "notes": self.notes,
            **({"throttle": self.throttle, "source_latency": self.source_latency}
               if self.throttle is not None else {}),
        }


def show_key(key: bytes) -> str:
    """A key for display: text as is, other bytes escaped."""
    try:
        text = key.decode()
    except UnicodeDecodeError:
        return repr(key)[2:-1]
    return text if text.isprintable() else repr(key)[2:-1]


def is_internal(key: bytes) -> bool:
    return key.startswith(INTERNAL_PREFIX)
