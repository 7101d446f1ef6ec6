"""``--mode native``: the target replicates from the source (REPLICAOF), and kvmigrate watches.

It gives the target the source's credentials (``masterauth``/``masteruser``), sends REPLICAOF,
then follows ``INFO replication`` on both sides: the full sync (bytes received of the RDB), the
load, then the stream until the target's offset reaches the source's and a heartbeat written
on the source shows up on the target. It refuses up front when the facts in
:mod:`migrate.compat.rdb` say the target cannot load the source's RDB, and for a TLS source
when the target has no TLS certificate and CA to replicate with (``tls-cert-file``,
``tls-ca-cert-file``/``-dir``: the target's own files, which kvmigrate cannot give it).
"""

from __future__ import annotations

import time
from typing import Any

import redis

from migrate.compat.rdb import can_load_rdb_of
from migrate.errors import KvmError
from migrate.state.ledger import Ledger
from migrate.sync.engine import lag_window_of
from migrate.sync.heartbeat import Heartbeat
from migrate.sync.modes import NATIVE
from migrate.sync.options import SyncOptions
from migrate.sync.overfull import check_replica_memory
from migrate.sync.sides import Source, Target
from migrate.sync.status import StatusPublisher


def refusal(source: Source, target: Target, opts: SyncOptions) -> str | None:
    """Why native replication cannot do this sync, or None when it can."""
    if opts.match or opts.db_map:
        return ("native replication copies every key of every database as it is; --match and "
                "--db-map need another mode")
    if not source.has("PSYNC"):
        return f"{source} does not offer PSYNC (renamed or disabled), so nothing can replicate"
    load = can_load_rdb_of(target.identity, source.identity)
    if not load.ok:
        return load.reason
    return tls_refusal(source, target)


def tls_refusal(source: Source, target: Target) -> str | None:
    """Why the target cannot replicate from a TLS source (None: it can, or no TLS)."""
    if not source.endpoint.tls:
        return None
    try:
        raw = target.client.config_get("tls-*")
    except redis.RedisError as exc:
        return (f"the source is reached over TLS and {target} does not show its TLS "
                f"settings (CONFIG GET: {exc}), so it may not be able to replicate over TLS")
    conf = {_text(k): _text(v) for k, v in raw.items()}
    if not conf.get("tls-cert-file") or not (conf.get("tls-ca-cert-file")
                                             or conf.get("tls-ca-cert-dir")):
        return (f"the source is reached over TLS and {target} has no TLS certificate and CA "
                "to replicate with (tls-cert-file, tls-ca-cert-file unset on the target)")
    return None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _int(info: dict[str, Any], name: str, default: int = 0) -> int:
    try:
        return int(info.get(name, default))
    except (TypeError, ValueError):
        return default


class NativeSync:
    mode = NATIVE

    def __init__(self, source: Source, target: Target, opts: SyncOptions, ledger: Ledger,
                 status: StatusPublisher):
        self.source, self.target, self.opts = source, target, opts
        self.ledger, self.status = ledger, status
        self.heartbeat = Heartbeat(source.client, target.client, resumes_from_successor=True) \
            if opts.heartbeat else None
        self._rdb: tuple[int, int | None] = (0, None)  # RDB bytes read, its size
        self.target_info: dict[str, Any] = {}  # the target's INFO at the last sample

    # --- start ------------------------------------------------------------------------------
    def _replicating_from_source(self) -> bool:
        info = self.target.info("replication")
        return (info.get("role") == "slave"
                and str(info.get("master_host")) == self.source.endpoint.host
                and _int(info, "master_port") == self.source.endpoint.port)

    def start(self) -> None:
        if self.ledger.done("replicaof") and self._replicating_from_source():
            self.opts.observer.note("resuming: the target already replicates from the source")
            return
        with self.ledger.phase("replicaof") as counters:
            src, tgt = self.source.endpoint, self.target.client
            try:
                if src.password is not None:
                    tgt.config_set("masterauth", src.password)
                if src.username:
                    tgt.config_set("masteruser", src.username)
                if src.tls:
                    tgt.config_set("tls-replication", "yes")
                tgt.execute_command("REPLICAOF", src.host, src.port)
            except redis.ResponseError as exc:
                raise KvmError(f"{self.target} refused to replicate: {exc}",
                               "check that CONFIG SET and REPLICAOF are allowed on the target") \
                    from None
            counters["replicaof"] = f"{src.host}:{src.port}"
            self.opts.observer.note(f"{self.target} is now a replica of {self.source}"
                                    + (" (masterauth set)" if src.password else ""))

    # --- watching -----------------------------------------------------------------------------
    def sample(self) -> dict[str, Any]:
        """One look at both sides: phase of the sync, bytes, offsets, keys, ops/s."""
        source_offset = _int(self.source.info("replication"), "master_repl_offset")
        info = self.target_info = self.target.client.info()
        link = info.get("master_link_status", "down")
        self._still_replica(info)
        syncing = _int(info, "master_sync_in_progress")
        loading = _int(info, "loading")
        target_offset = _int(info, "slave_repl_offset", -1)
        if syncing:
            phase = "full-sync"
        elif loading:
            phase = "loading"
        elif link != "up":
            phase = "connecting"
        else:
            phase = "streaming"
        keys = sum(v.get("keys", 0) for k, v in info.items()
                   if k.startswith("db") and k[2:].isdigit() and isinstance(v, dict))
        # the target shows the RDB's bytes only while it arrives: keep the last figures
        # (the RDB's size once it is in, when the source announced it), not the 0 it shows
        # afterwards. A diskless transfer announces no size, and the last look may have
        # come before its end: then the bytes seen stay a lower bound with no total.
        if syncing:
            total = _int(info, "master_sync_total_bytes", -1)
            self._rdb = (_int(info, "master_sync_read_bytes"), total if total > 0 else None)
        elif self._rdb[1]:
            self._rdb = (self._rdb[1], self._rdb[1])
        # no ops_per_s: a replica does not count the commands its primary sends (its
        # total_commands_processed moves only with kvmigrate's own INFO); the status has
        # the stream's rate instead (migrate.sync.progress)
        return {
            "mode": self.mode, "link": link, "sync_phase": phase, "keys": keys,
            "bytes_copied": self._rdb[0], "bytes_total": self._rdb[1],
            "loading_percent": float(info.get("loading_loaded_perc", 0) or 0),
            "source_offset": source_offset, "target_offset": target_offset,
            "lag_bytes": max(0, source_offset - target_offset) if target_offset >= 0 else None,
        }

    def _still_replica(self, info: dict[str, Any]) -> None:
        """Stop when someone else promoted the target (REPLICAOF NO ONE) or pointed it at
        another primary: it no longer receives the source's writes."""
        if not self.ledger.done("replicaof"):
            return
        role = info.get("role")
        if role == "slave" and str(info.get("master_host")) == self.source.endpoint.host \
                and _int(info, "master_port") == self.source.endpoint.port:
            return
        now = "a primary" if role == "master" else \
            f"a replica of {info.get('master_host')}:{info.get('master_port')}"
        raise KvmError(f"{self.target} is no longer a replica of {self.source}: it is {now} "
                       "(promoted by someone else?), so the source's writes no longer reach it",
                       "find out who changed it; run again with --resume to make it a replica "
                       "of the source again: a full sync")

    def catch_up(self) -> None:
        """Wait for the full sync, the load and the stream to reach the source's offset."""
        with self.ledger.phase("catch-up") as counters:
            last_change, last = time.monotonic(), None
            while not self.opts.stop.is_set():
                s = self.sample()
                self.status.update(**s)
                progress = (s["sync_phase"], s["bytes_copied"], s["target_offset"], s["keys"],
                            s["loading_percent"])
                if progress != last:
                    last, last_change = progress, time.monotonic()
                if s["sync_phase"] == "streaming" and s["lag_bytes"] == 0:
                    break
                if time.monotonic() - last_change > self.opts.stall_timeout_s:
                    raise KvmError(
                        f"the target made no replication progress for "
                        f"{self.opts.stall_timeout_s:.0f} s (link {s['link']}, "
                        f"{s['sync_phase']})",
                        "look at the target's log for the reason (an RDB it cannot load, "
                        "auth, network); the target is left a replica: REPLICAOF NO ONE "
                        "undoes it")
                time.sleep(0.2)
            self.ledger.offsets.update(source=s["source_offset"], target=s["target_offset"])
            counters.update(keys=s["keys"], offset=s["target_offset"])
            check_replica_memory(str(self.target), self.target_info)
            if self.heartbeat and not self.opts.stop.is_set():
                stamp = self.heartbeat.beat()
                if not self.heartbeat.await_beat(stamp, 60, self.opts.stop):
                    raise KvmError("the heartbeat written on the source did not reach the "
                                   "target within 60 s", "check the target's replication link")
                self.status.update(lag_ms=self.heartbeat.lag_ms())

    def tick(self) -> None:
        """One second of --follow: a heartbeat, and the live figures."""
        s = self.sample()
        check_replica_memory(str(self.target), self.target_info)
        if self.heartbeat:
            self.heartbeat.beat()
            time.sleep(0.05)
            s["lag_ms"] = self.heartbeat.lag_ms()
        self.status.update(**s)
        self.opts.stop.wait(1.0)

    def written_keys(self) -> list[tuple[int, bytes]]:
        return []  # the target replicates directly: kvmigrate does not see the stream

    def check(self) -> None:
        pass  # no worker thread: the target replicates by itself

    def figures(self) -> dict[str, Any]:
        """The target replicates by itself: its own INFO says how far it is."""
        return {**self.sample(), "lag_keys": None, "commands": 0, "target_errors": 0}

    def lag_window_s(self) -> float:
        return lag_window_of(self.heartbeat)

    def close(self) -> None:
        if self.heartbeat:
            self.heartbeat.remove()
