"""``kvmigrate copy`` as a library object: validate the RDB, check the target, then write
(or, with ``dry_run``, only count what would be written). Progress goes to an observer.

Two paths. When a loader is given (:class:`NativeLoader`, migrate.proxy.fileload, passed in
by the CLI) and takes the file (an empty Redis or Valkey target that loads every record as
it is, no ``--match`` or ``--db-map``), the target loads the file itself: the checksum is
verified first, then the file is served while it is walked (see that module). Otherwise,
record by record: (1) read the whole file once (structure and CRC64: a defect stops the
copy before any key is written); (2) judge what the target cannot take (blockers stop the
copy unless ``skip_unsupported``), refuse a non-empty target unless ``flush_target``;
(3) read again and write through :class:`TargetWriter`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from migrate.apply.commands import ApplyOptions, ApplyStats, CommandBuilder
from migrate.apply.fit import assess
from migrate.apply.rdbfile import RdbFileWriter
from migrate.apply.target import STREAM_TYPES, Target
from migrate.apply.writer import TargetWriter
from migrate.dbmap import DbMap, parse_db_map  # noqa: F401 - the CLI imports it here
from migrate.endpoint import Endpoint
from migrate.errors import KvmError, UsageError
from migrate.keyglob import compile_glob
from migrate.model import Finding, Severity
from migrate.protocol.outofmemory import TargetOutOfMemory
from migrate.rdb.reader import RdbReader
from migrate.rdb.records import Entry, Function
from migrate.rdb.summary import RdbSummary, summarize
from migrate.serverinfo import identify


@dataclass
class Progress:
    bytes_done: int = 0
    bytes_total: int = 0
    keys_done: int = 0
    keys_total: int = 0
    phase: str = "validating"  # validating (reading the whole file first), then writing
    started: float = field(default_factory=time.monotonic)


class NotLoaded(KvmError):
    """The target could not load the file itself, and holds nothing of it: the copy goes
    record by record (``message``: why)."""


class NativeLoader(Protocol):
    """The target loads the file itself (migrate.proxy.fileload.FileLoad)."""

    def refusal(self, path: Path, target: Target) -> str | None: ...

    def verify(self, path: Path, progress: Callable[[int], None]) -> None: ...

    def load(self, path: Path, target: Target, progress: Callable[[int], None],
             before_end: Callable[[RdbSummary], None]) -> RdbSummary: ...


REPLICATION = "loaded by the target itself (replication)"
RECORDS = "record by record"


@dataclass
class CopyOptions:
    db_map: DbMap = field(default_factory=DbMap)
    match: str | None = None
    flush_target: bool = False
    dry_run: bool = False
    skip_unsupported: bool = False
    apply: ApplyOptions = field(default_factory=ApplyOptions)


@dataclass
class CopyResult:
    source: str
    target: str
    summary: RdbSummary
    findings: list[Finding]
    stats: ApplyStats
    dry_run: bool
    not_matched: int = 0
    flushed: bool = False
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    path: str = RECORDS  # how the keys went: REPLICATION or RECORDS
    path_reason: str = ""  # why not by replication

    @property
    def failed(self) -> int:
        return sum(self.stats.failed.values())

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, "target": self.target, "dry_run": self.dry_run,
                "flushed_target": self.flushed, "not_matched": self.not_matched,
                "elapsed_s": round(self.elapsed_s, 3), "notes": self.notes,
                "path": self.path, "path_reason": self.path_reason,
                **self.stats.to_dict(),
                "findings": [f.to_dict() for f in self.findings]}


def _nonempty_dbs(endpoint: Endpoint) -> dict[int, int]:
    info = endpoint.client().info("keyspace")
    return {int(name[2:]): int(v["keys"]) for name, v in info.items() if int(v["keys"])}


def refuse_replica_target(endpoint: Endpoint) -> None:
    """A replica takes no writes (and would drop what it was given at its next sync)."""
    info = endpoint.client().info("replication")
    if info.get("role", "master") != "master":
        primary = f"{info.get('master_host', '?')}:{info.get('master_port', '?')}"
        raise UsageError(f"target {endpoint.display()} is a replica (of {primary})",
                         "copy into a primary: run REPLICAOF NO ONE on it (a copy stopped "
                         "while the target loaded the file leaves it a replica of kvmigrate; "
                         "CONFIG SET repl-diskless-load to your value again too)")


def refuse_busy_target(endpoint: Endpoint) -> None:
    """Raise the refusal for a target that holds keys (the caller did not ask to flush)."""
    busy = _nonempty_dbs(endpoint)
    if busy:
        where = ", ".join(f"db{d}: {n} keys" for d, n in sorted(busy.items()))
        raise UsageError(f"target {endpoint.display()} is not empty ({where})",
                         "pass --flush-target to empty it first with FLUSHALL")


class CopyJob:
    def __init__(self, path: Path, endpoint: Endpoint | None, options: CopyOptions,
                 target_hint: Target | None = None,
                 observer: Callable[[Progress], None] | None = None,
                 out_path: Path | None = None, overwrite: bool = False,
                 native: NativeLoader | None = None):
        """Copy to a live ``endpoint``, or (``endpoint`` None) write ``out_path``, an RDB
        for ``target_hint``; ``native``: the target may load the file itself."""
        self.native = native
        self.path = path
        self.endpoint = endpoint
        self.out_path = out_path
        self.overwrite = overwrite
        self.opt = options
        self.target_hint = target_hint
        self.observer = observer or (lambda p: None)
        self._match = compile_glob(options.match) \
            if options.match else None

    def _identify(self) -> Target:
        if self.endpoint is None:
            assert self.target_hint is not None
            return self.target_hint
        client = self.endpoint.client()
        ident = identify({k: v for k, v in client.info("server").items()})
        if self.target_hint and self.target_hint.flavor != ident.flavor:
            raise UsageError(f"--to {self.target_hint.flavor} but {self.endpoint.display()} "
                             f"is {ident}")
        return Target(ident)

    def _refuse_busy(self) -> None:
        assert self.endpoint is not None
        refuse_busy_target(self.endpoint)

    def run(self) -> CopyResult:
        started = time.monotonic()
        if self.out_path is not None and self.out_path.exists() and not self.overwrite:
            raise UsageError(f"{self.out_path} exists", "pass --overwrite to replace it")
        # connect first: an unreachable, wrong or busy target fails before a long validation
        target = self._identify()
        if self.endpoint is not None and not self.opt.dry_run:
            refuse_replica_target(self.endpoint)
        if self.endpoint is not None and not self.opt.flush_target and not self.opt.dry_run:
            self._refuse_busy()
        why = self._not_native(target)
        if why is None:
            try:
                return self._native(target, started)
            except NotLoaded as exc:
                why = exc.message
        result = self._by_records(target, started)
        result.path_reason = why
        return result

    def _not_native(self, target: Target) -> str | None:
        """None when the target may load the file itself; otherwise why not."""
        if self.native is None or self.endpoint is None:
            return "not offered for this target"
        if self.opt.dry_run:
            return "a dry run"
        if self.opt.match:
            return "--match selects keys"
        if self.opt.db_map:
            return "--db-map moves keys"
        return self.native.refusal(self.path, target)

    def _native(self, target: Target, started: float) -> CopyResult:
        assert self.native is not None and self.endpoint is not None
        progress = Progress(bytes_total=self.path.stat().st_size, phase="checking")

        def advance(offset: int) -> None:
            progress.bytes_done = offset
            self.observer(progress)

        self.native.verify(self.path, advance)  # the file is whole before anything is touched
        flushed = self._flush_if_asked()
        findings: list[Finding] = []

        def before_end(summary: RdbSummary) -> None:  # the last bytes are not sent yet
            findings.extend(self._judge(target, summary))
            if any(f.severity == Severity.BLOCKER for f in findings):  # --skip-unsupported
                raise NotLoaded("some keys cannot go to the target as they are "
                                "(--skip-unsupported counts them as failed)")

        progress.phase = "loading"
        summary = self.native.load(self.path, target, advance, before_end)
        stats = ApplyStats(keys=Counter(summary.by_type))
        stats.functions = len(summary.functions)
        notes = []
        if summary.expired:
            notes.append(f"{summary.expired:,} keys already expired when read were loaded and "
                         "expire on the target")
        result = CopyResult(str(self.path), f"{self.endpoint.display()} ({target})", summary,
                            findings, stats, False, flushed=flushed, notes=notes,
                            path=REPLICATION)
        result.elapsed_s = time.monotonic() - started
        return result

    def _flush_if_asked(self) -> bool:
        """FLUSHALL a non-empty target when --flush-target (refused otherwise)."""
        assert self.endpoint is not None
        if not _nonempty_dbs(self.endpoint):
            return False
        if not self.opt.flush_target:
            self._refuse_busy()  # checked again: keys may have arrived during validation
        self.endpoint.client().flushall()
        return True

    def _judge(self, target: Target, summary: RdbSummary) -> list[Finding]:
        """The findings; raises when the file cannot go (blockers without
        --skip-unsupported, keys of slots being imported)."""
        if summary.slot_imports:  # keys of another node's slots, still on their way
            raise UsageError(f"{self.path} was saved while its Valkey cluster node was "
                             f"importing slots {' '.join(summary.slot_imports)} (an atomic "
                             "slot migration under way): its keys of those slots are a copy "
                             "in progress, not the node's own",
                             "copy an RDB saved once the migration has ended")
        findings = assess(summary, target)
        blockers = [f for f in findings if f.severity == Severity.BLOCKER]
        if blockers and not self.opt.skip_unsupported:
            raise UsageError(f"{target} cannot take: " + "; ".join(b.title for b in blockers),
                             "pass --skip-unsupported to copy everything else and count those "
                             "keys as failed")
        return findings

    def _by_records(self, target: Target, started: float) -> CopyResult:
        check = Progress(bytes_total=self.path.stat().st_size)

        def validating(offset: int) -> None:
            check.bytes_done = offset
            self.observer(check)

        with self.path.open("rb") as fh:  # phase 1: the whole file is valid, or nothing is
            summary = summarize(fh, progress=validating,  # written
                                raw_limit=self.opt.apply.max_bytes - 16,
                                expiry_limit_ms=target.max_ttl_ms)

        findings = self._judge(target, summary)
        if self.endpoint is None:
            return self._to_file(target, summary, findings, started)
        busy = _nonempty_dbs(self.endpoint)
        flushed = False
        notes = []
        if busy and not self.opt.flush_target and not self.opt.dry_run:
            self._refuse_busy()  # checked again: keys may have arrived during validation
        if busy and not self.opt.dry_run:
            self.endpoint.client().flushall()
            flushed = True
        if busy and self.opt.dry_run:  # the plan is still shown; the real copy is refused
            where = ", ".join(f"db{d}: {n} keys" for d, n in sorted(busy.items()))
            notes.append(f"the target is not empty ({where}): the real copy "
                         + ("would FLUSHALL it first (--flush-target)" if self.opt.flush_target
                            else "is refused unless --flush-target"))
        result = CopyResult(str(self.path), f"{self.endpoint.display()} ({target})", summary,
                            findings, ApplyStats(), self.opt.dry_run, flushed=flushed,
                            notes=notes)
        result.stats, result.not_matched = self._apply(target, summary)
        result.elapsed_s = time.monotonic() - started
        return result

    def _to_file(self, target: Target, summary: RdbSummary, findings: list[Finding],
                 started: float) -> CopyResult:
        assert self.out_path is not None
        result = CopyResult(str(self.path), f"{self.out_path} (an RDB for {target})", summary,
                            findings, ApplyStats(), self.opt.dry_run)
        result.stats, result.not_matched = self._apply(target, summary)
        result.elapsed_s = time.monotonic() - started
        return result

    def _apply(self, target: Target, summary: RdbSummary) -> tuple[ApplyStats, int]:
        progress = Progress(bytes_total=summary.file_bytes,
                            keys_total=summary.keys + summary.empty_keys,
                            phase="dry run" if self.opt.dry_run else "writing")
        not_matched = 0
        last_report = 0.0
        with self.path.open("rb") as fh:
            magic = summary.producer.magic
            irregular = summary.irregular

            # streams are decoded for a target that needs their groups' counters set again
            restorable = frozenset(t for t in range(256) if target.restores(t, magic) and not (
                t in STREAM_TYPES and target.sets_entries_read_after))

            def skim(type_code: int, offset: int) -> bool:  # validated: only bytes needed
                return type_code in restorable and offset not in irregular

            reader = RdbReader(fh, raw_limit=self.opt.apply.max_bytes - 16,
                               chunk_elements=self.opt.apply.max_elements,
                               chunk_bytes=self.opt.apply.max_bytes, skim=skim)
            writer: TargetWriter | RdbFileWriter | None = None
            builder: CommandBuilder
            if self.opt.dry_run:
                builder = CommandBuilder(target, magic, self.opt.apply)
            elif self.endpoint is None:
                assert self.out_path is not None
                writer = RdbFileWriter(self.out_path, target, magic, self.opt.apply,
                                       self.opt.db_map)
            else:
                writer = TargetWriter(self.endpoint, target, magic, self.opt.apply,
                                      self.opt.db_map)
            ok = False
            try:
                for rec in reader.records():
                    if isinstance(rec, Entry):
                        if rec.final:
                            progress.keys_done += 1
                        if self._match and not self._match.fullmatch(rec.key):
                            not_matched += rec.final
                            continue
                        if writer is not None:
                            writer.write(rec)
                        else:
                            builder.commands(rec)
                    elif isinstance(rec, Function):
                        if writer is not None:
                            writer.load_function(rec)
                        elif target.loads_functions:
                            builder.stats.functions += 1
                    now = time.monotonic()
                    if now - last_report > 0.2:
                        progress.bytes_done = reader.input.offset
                        self.observer(progress)
                        last_report = now
                stats = writer.finish() if writer is not None else builder.stats
                ok = True
            except TargetOutOfMemory as exc:  # a copy has no --resume: it starts again
                exc.hint = ("raise maxmemory on the target (CONFIG SET maxmemory) or free "
                            "memory there, then copy again with --flush-target")
                raise
            finally:
                if isinstance(writer, TargetWriter):
                    writer.close()
                elif isinstance(writer, RdbFileWriter) and not ok:
                    writer.abort()
        progress.bytes_done = progress.bytes_total
        self.observer(progress)
        return stats, not_matched
