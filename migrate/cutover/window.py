"""Rollback through a write window: for a new primary kvmigrate cannot follow (Dragonfly: no
PSYNC for a Redis replica, keyspace notifications for expiry only), its writes are paused for
the whole copy, bounded by ``--window-ms``.

1. ``CLIENT PAUSE <window> WRITE`` on the new primary (Dragonfly has it:
   src/server/server_family.cc ClientPauseCmd, WRITE mode included);
2. its keyspace is read with SCAN + DUMP + PTTL and written down as an RDB file: each record
   is the DUMP payload's value bytes with the key put after the type byte (the payload is
   ``type | value | 2-byte RDB version | CRC64``), an expiry before it, SELECT per database;
3. that RDB goes through the proxy's rewriter for the old primary (header lowered, records
   it cannot load sent as commands after it), and the old primary replicates it from
   kvmigrate: it stays read-only for clients meanwhile (a write gets READONLY);
4. once it has acknowledged everything: a final verification sample, ``REPLICAOF NO ONE`` on
   the old primary, the new one fenced (Dragonfly: made a replica of the old primary, which
   it can be, so writes there fail with READONLY; others: ``min-replicas-to-write``), then
   unpaused, and the old primary's own fence lifted.

Any failure before the old primary is promoted unpauses the new primary, which keeps serving;
the old one is left as it was (a fenced primary). Functions are not copied (Dragonfly has
none).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import redis

from migrate.apply.commands import Command
from migrate.apply.target import Target as ApplyTarget
from migrate.cutover.fence import FenceRecord, fence, fence_commands, unfence
from migrate.cutover.roles import Roles
from migrate.cutover.run import (
    CutoverFailed,
    CutoverOptions,
    CutoverResult,
    FinalCheck,
    StepRecord,
    clients_left,
)
from migrate.endpoint import Endpoint
from migrate.errors import KvmError
from migrate.protocol.rawconn import RawConn
from migrate.protocol.resp import encode_command
from migrate.proxy.primary import ReplicaServer
from migrate.proxy.rewrite import rewrite_rdb
from migrate.rdb import encode
from migrate.rdb.crc64 import crc64
from migrate.rdb.dump import split_payload
from migrate.serverinfo import identify
from migrate.state.ledger import private_dir
from migrate.state.paths import StatePaths
from migrate.verify.model import is_internal

BATCH = 500
Notify = Callable[[str], None]


class WindowRollback:
    def __init__(self, old: Endpoint, new: Endpoint, options: CutoverOptions, *,
                 window_ms: int, fence_record: FenceRecord | None, state_root: Path,
                 final_check: FinalCheck | None = None, keep_spool: bool = False,
                 notify: Notify = lambda _m: None):
        """``keep_spool``: keep the snapshot and its rewrite (``rollback-window``) after the
        run (a full copy of the data: removed otherwise)."""
        self.old, self.new, self.options = old, new, options
        self.keep_spool = keep_spool
        self.window_ms = window_ms
        self.fence_record = fence_record
        self.spool = StatePaths(state_root).rollback_window
        self.final_check = final_check
        self.notify = notify
        self.result = CutoverResult(ok=False, dry_run=options.dry_run, source=new.display(),
                                    target=old.display())
        self.old_c, self.new_c = old.client(), new.client()
        self.new_id = identify(self.new_c.info("server"))
        self.old_id = identify(self.old_c.info("server"))
        self.roles = Roles.of(self.old_id, self.new_id)
        self.result.roles = self.roles.cutover()

    # --- the plan ---------------------------------------------------------------------------
    def plan(self) -> list[str]:
        fence_new = f"REPLICAOF {self.old.host} {self.old.port} (it becomes a replica of the " \
                    "old primary: writes get READONLY)" if self.new_id.flavor == "dragonfly" \
            else fence_commands()[0]
        return [f"new primary: CLIENT PAUSE {self.window_ms} WRITE (for the whole copy)",
                "new primary: SCAN + DUMP + PTTL of every database, written down as an RDB",
                f"kvmigrate: rewrite that RDB for {self.old_id} (records it cannot load as "
                "commands after it)",
                "old primary: REPLICAOF kvmigrate (read-only meanwhile), loads it, acknowledges",
                "new and old primary: final verification sample",
                "old primary: REPLICAOF NO ONE",
                f"new primary: {fence_new}",
                "new primary: CLIENT UNPAUSE",
                "old primary: its fence lifted (min-replicas-to-write as before the cut-over)"]

    def run(self) -> CutoverResult:
        if self.options.dry_run:
            self.result.plan = self.plan()
            now = time.time()
            self.result.steps = [StepRecord("window", "planned", now, now, {"command": p})
                                 for p in self.result.plan]
            self.result.ok = True
            return self.result
        if self.spool.exists():
            shutil.rmtree(self.spool)
        private_dir(self.spool)  # a copy of the data: 0700, its files 0600
        paused_at = None
        promoted = False
        server: ReplicaServer | None = None
        try:
            self.new_c.execute_command("CLIENT", "PAUSE", self.window_ms, "WRITE")
            paused_at = time.monotonic()
            deadline = paused_at + self.window_ms / 1000 - 0.5
            self._record("pause", {"window_ms": self.window_ms})
            keys, raw = self._snapshot(deadline)
            self._record("snapshot", {"keys": keys})
            rdb, oob = self._rewrite(raw)
            server = ReplicaServer(("127.0.0.1", 0), rdb, oob, lambda: oob.stat().st_size,
                                   self.notify)
            server.start()
            self.old_c.execute_command("REPLICAOF", server.host, server.port)
            self._wait_loaded(server, oob.stat().st_size, deadline)
            self._record("loaded", {"bytes": rdb.stat().st_size + oob.stat().st_size})
            if self.final_check is not None:
                ok, summary = self.final_check()
                self._record("final-verify", {"summary": summary})
                if not ok:
                    raise CutoverFailed(f"final verification failed: {summary}")
            if time.monotonic() > deadline:
                raise CutoverFailed("the write window was used up before promotion",
                                    "give a larger --window-ms")
            server.release()  # its link drops now, as it should
            self.old_c.execute_command("REPLICAOF", "NO", "ONE")
            promoted = True
            self.result.promoted_at = time.time()
            self._record("promote", {"command": "REPLICAOF NO ONE (old primary)"})
            self._fence_new()
        except BaseException as exc:
            if not promoted:
                with contextlib.suppress(redis.RedisError):
                    self.old_c.execute_command("REPLICAOF", "NO", "ONE")  # still fenced
                if isinstance(exc, KvmError | redis.RedisError | OSError):
                    raise CutoverFailed(
                        f"rollback aborted before promotion: {getattr(exc, 'message', exc)}",
                        "the new primary was unpaused and keeps serving; the old one is "
                        "still fenced") from None
            raise
        finally:
            if server is not None:
                server.close()
            if paused_at is not None:
                with contextlib.suppress(redis.RedisError):
                    self.new_c.execute_command("CLIENT", "UNPAUSE")
                self.result.paused_ms = round((time.monotonic() - paused_at) * 1000, 1)
            if not self.keep_spool:
                shutil.rmtree(self.spool, ignore_errors=True)
        if self.fence_record is not None:
            unfence(self.old_c, self.fence_record)
            self.notify(f"{self.roles.old} ({self.old.display()}): fence lifted")
        self.result.clients_left = clients_left(self.new_c)
        self.result.ok = True
        return self.result

    # --- steps ------------------------------------------------------------------------------
    def _snapshot(self, deadline: float) -> tuple[int, Path]:
        """The new primary's keys as an RDB file (header version: the highest DUMP payload
        version seen)."""
        body_path, raw_path = self.spool / "body.bin", self.spool / "snapshot.rdb"
        version, keys = 9, 0
        dbs = sorted(int(k[2:]) for k in self.new_c.info("keyspace") if k[2:].isdigit())
        with open(body_path, "wb") as body, RawConn(self.new) as conn:
            for db in dbs:
                conn.select(db)
                body.write(b"\xfe" + encode.length(db))
                cursor: bytes = b"0"
                while True:
                    if time.monotonic() > deadline:
                        raise CutoverFailed("the write window ended during the copy",
                                            "give a larger --window-ms")
                    cursor, batch = conn.call("SCAN", cursor, "COUNT", BATCH)
                    batch = [k for k in batch if not is_internal(k)]
                    replies = conn.call_many([c for k in batch for c in
                                              (("DUMP", k), ("PTTL", k))])
                    for i, key in enumerate(batch):
                        payload, ttl = replies[2 * i], replies[2 * i + 1]
                        if payload is None:
                            continue  # gone meanwhile (expired)
                        version = max(version, self._write_record(body, key, payload, ttl))
                        keys += 1
                    if cursor == b"0":
                        break
        with open(raw_path, "wb") as out, open(body_path, "rb") as body:
            header = b"REDIS%04d" % version
            crc = crc64(header)
            out.write(header)
            while chunk := body.read(1 << 20):
                crc = crc64(chunk, crc)
                out.write(chunk)
            crc = crc64(b"\xff", crc)
            out.write(b"\xff" + crc.to_bytes(8, "little"))
        body_path.unlink()
        return keys, raw_path

    @staticmethod
    def _write_record(out: BinaryIO, key: bytes, payload: bytes, ttl: int) -> int:
        raw, version = split_payload(payload)
        if isinstance(ttl, int) and ttl > 0:
            out.write(b"\xfc" + encode.ms_time(int(time.time() * 1000) + ttl))
        out.write(raw[:1] + encode.string(key) + raw[1:])
        return version

    def _rewrite(self, raw: Path) -> tuple[Path, Path]:
        rdb, oob = self.spool / "rewritten.rdb", self.spool / "commands.bin"
        with open(raw, "rb") as src, open(rdb, "wb") as out, open(oob, "wb") as cmds:
            def on_command(cmd: Command) -> None:
                cmds.write(encode_command(cmd))

            stats = rewrite_rdb(src, out.write, ApplyTarget(self.old_id), on_command)
        self.notify(f"window: RDB {stats.source_header} -> {stats.target_header}, "
                    f"{stats.keys_passed:,} key(s) as records, {stats.keys_out_of_band:,} as "
                    "commands")
        return rdb, oob

    def _wait_loaded(self, server: ReplicaServer, size: int, deadline: float) -> None:
        while not (server.linked.is_set() and server.acked >= size):
            if server.error is not None:
                raise KvmError(f"serving the old primary failed: {server.error}")
            if time.monotonic() > deadline:
                raise CutoverFailed("the old primary did not load the copy within the write "
                                    "window", "give a larger --window-ms; see its log")
            time.sleep(0.05)

    def _fence_new(self) -> None:
        if self.options.fence == "none":
            self.notify("warning: --fence none: the new primary will accept writes after the "
                        "rollback")
            return
        if self.new_id.flavor == "dragonfly":
            if self.old.password:
                self.new_c.config_set("masterauth", self.old.password)
            self.new_c.execute_command("REPLICAOF", self.old.host, self.old.port)
            self._record("fence", {"command": f"REPLICAOF {self.old.host} {self.old.port}"})
        else:
            self.result.fence = fence(self.new_c)
            self.result.fences = [self.result.fence]
            self._record("fence", {"command": fence_commands()[0]})

    def _record(self, name: str, detail: dict[str, object]) -> None:
        now = time.time()
        self.result.steps.append(StepRecord(name, "done", now, now, dict(detail)))
        self.notify(f"{name}: {detail}")
