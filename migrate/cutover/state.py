"""What the cut-over and rollback read from and add to a sync's ``--state DIR``.

The sync's ledger (``ledger.json``) names the run with masked URLs: it never holds secrets.
So the servers' URLs come from ``--source``/``--target`` (or ``KVMIGRATE_SOURCE_URL`` /
``KVMIGRATE_TARGET_URL``) when they need a password, else from the ledger; a TLS side's
certificate files from the ``--source-tls-*``/``--target-tls-*`` options when given, else
from the ledger, which records their paths when the sync starts. A running
``sync --follow`` owns the ledger, so the cut-over writes its own record, ``cutover.json``,
beside it (and ``rollback.json`` for a rollback).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrate.endpoint import Endpoint, TlsSettings
from migrate.errors import UsageError
from migrate.state.ledger import recorded_tls, write_json_atomic
from migrate.state.paths import LEDGER_FILE, StatePaths
from migrate.sync.modes import NATIVE


@dataclass
class SyncState:
    root: Path
    ledger: dict[str, Any]

    @classmethod
    def load(cls, root: Path, *, planning: bool = False) -> SyncState:
        """The sync's state; when ``planning`` (a dry run before the sync has run), a missing
        ledger stands for the native sync that is yet to come."""
        path = StatePaths(root).ledger
        if not path.exists() and planning:
            return cls(root, {"run": {"mode": NATIVE}, "phases": []})
        if not path.exists():
            raise UsageError(f"no sync ledger in {root} ({LEDGER_FILE} missing)",
                             "give the --state DIR of a `kvmigrate sync` run")
        try:
            return cls(root, json.loads(path.read_text()))
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path} is not a kvmigrate ledger: {exc}") from None

    @property
    def mode(self) -> str:
        return str(self.ledger.get("run", {}).get("mode", ""))

    def endpoint(self, side: str, override: str | None) -> Endpoint:
        url = override or os.environ.get(f"KVMIGRATE_{side.upper()}_URL")
        recorded = str(self.ledger.get("run", {}).get(side, ""))
        if url:
            return Endpoint.parse(url)
        if "***" in recorded:
            raise UsageError(f"the {side} needs a password, which the ledger does not keep",
                             f"give --{side} URL or set KVMIGRATE_{side.upper()}_URL")
        if not recorded:
            where = (f"the ledger in {self.root} names no {side}"
                     if StatePaths(self.root).ledger.exists()
                     else f"no sync has run in {self.root} yet, so the {side} is not known")
            raise UsageError(where, f"give --{side} URL or set KVMIGRATE_{side.upper()}_URL")
        return Endpoint.parse(recorded)

    def tls(self, side: str) -> TlsSettings | None:
        """The TLS files the sync was started with for ``side`` (None: not recorded)."""
        return recorded_tls(self.ledger, side)

    def last_verification_ok(self) -> bool | None:
        phase = next((p for p in self.ledger.get("phases", []) if p.get("name") == "verify"),
                     None)
        if phase is None or phase.get("status") != "done":
            return None
        return int(phase.get("counters", {}).get("mismatches", 1)) == 0

    def cutover_record(self) -> dict[str, Any] | None:
        path = StatePaths(self.root).cutover
        return json.loads(path.read_text()) if path.exists() else None

    def write(self, name: str, payload: dict[str, Any]) -> Path:
        path = self.root / name
        write_json_atomic(path, payload)
        return path
