"""Every file of a ``--state DIR``, declared once: nothing else spells a state file's name.

- ``ledger.json``: what the run is (source, target, mode), its phases, offsets and counters,
  and the latest live status (:mod:`migrate.state.ledger`). Rewritten atomically. For a TLS
  side it also names the TLS files the run was started with (absolute paths: never a password
  nor a key's contents), so that cut-over and rollback reach the servers the same way.
- ``kvmigrate.pid``: the pid of the run that owns the folder, removed when it ends.
- ``timeline.json``: the live figures sampled over time, bounded
  (:mod:`migrate.state.timeline`), for ``kvmigrate report``.
- ``written-keys.json``: a bounded sample of the keys the source's stream wrote, kept by the
  running sync, so the verification samples at the end of a sync and during a cut-over look
  at written keys, not only random ones.
- ``spool/`` (and ``shard-N/spool/`` of a cluster sync): the replication stream and RDB as
  they arrived, a full copy of the data. Removed when the run ends (a resumed run asks the
  source again and never reads it), unless ``--keep-spool``.
- ``applied.json``: the source offset the target has applied (replica and proxy modes), what
  a cut-over compares with the source's final offset.
- ``barrier-request.json`` / ``barrier-applied.json``: a cut-over's barrier requests to a
  running scan-mode sync and the sync's answers (:mod:`migrate.state.coordination`).
- ``sync-request.json`` / ``sync-answer.json``: the request/acknowledge record between a
  running sync and a cut-over: the cut-over writes a request with an id (``stop`` at
  promotion), the sync answers it by that id with what it did
  (:mod:`migrate.state.coordination`).
- ``cutover.json`` / ``rollback.json``: the records of a cut-over and a rollback, beside the
  ledger of the sync they ended (a running sync owns the ledger).
- ``rollback-sync/``: the state folder of a rollback's reverse sync; ``rollback-window/``: the
  snapshot a write-window rollback copies through.
- ``shard-N/``: the state folder of shard N's reader in a cluster sync (its own ledger,
  spool and ``applied.json``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LEDGER_FILE = "ledger.json"
PID_FILE = "kvmigrate.pid"
WRITTEN_KEYS_FILE = "written-keys.json"
TIMELINE_FILE = "timeline.json"
SPOOL_DIR = "spool"
APPLIED_FILE = "applied.json"
BARRIER_REQUEST_FILE = "barrier-request.json"
BARRIER_APPLIED_FILE = "barrier-applied.json"
SYNC_REQUEST_FILE = "sync-request.json"
SYNC_ANSWER_FILE = "sync-answer.json"
CUTOVER_FILE = "cutover.json"
ROLLBACK_FILE = "rollback.json"
ROLLBACK_SYNC_DIR = "rollback-sync"
ROLLBACK_WINDOW_DIR = "rollback-window"
SHARD_DIR = "shard-{index}"


@dataclass(frozen=True)
class StatePaths:
    root: Path

    @property
    def ledger(self) -> Path:
        return self.root / LEDGER_FILE

    @property
    def pidfile(self) -> Path:
        return self.root / PID_FILE

    @property
    def spool(self) -> Path:
        return self.root / SPOOL_DIR

    @property
    def written_keys(self) -> Path:
        return self.root / WRITTEN_KEYS_FILE

    @property
    def timeline(self) -> Path:
        return self.root / TIMELINE_FILE

    @property
    def applied(self) -> Path:
        return self.root / APPLIED_FILE

    @property
    def barrier_request(self) -> Path:
        return self.root / BARRIER_REQUEST_FILE

    @property
    def barrier_applied(self) -> Path:
        return self.root / BARRIER_APPLIED_FILE

    @property
    def sync_request(self) -> Path:
        return self.root / SYNC_REQUEST_FILE

    @property
    def sync_answer(self) -> Path:
        return self.root / SYNC_ANSWER_FILE

    @property
    def cutover(self) -> Path:
        return self.root / CUTOVER_FILE

    @property
    def rollback(self) -> Path:
        return self.root / ROLLBACK_FILE

    @property
    def rollback_sync(self) -> Path:
        return self.root / ROLLBACK_SYNC_DIR

    @property
    def rollback_window(self) -> Path:
        return self.root / ROLLBACK_WINDOW_DIR

    def shard(self, index: int) -> Path:
        """The state folder of shard ``index``'s reader in a cluster sync."""
        return self.root / SHARD_DIR.format(index=index)

    def shard_spools(self) -> list[Path]:
        """The spools of the shards of a cluster sync in this folder, sorted."""
        return sorted(self.root.glob(f"{SHARD_DIR.format(index='*')}/{SPOOL_DIR}"))


def default_state_dir(source: str, target: str) -> Path:
    """``.kvmigrate/<source>-to-<target>`` from the endpoints' addresses (no passwords)."""
    safe = lambda s: "".join(ch if ch.isalnum() or ch in ".-" else "-" for ch in s)  # noqa: E731
    return Path(".kvmigrate") / f"{safe(source)}-to-{safe(target)}"
