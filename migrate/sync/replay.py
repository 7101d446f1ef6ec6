"""Replaying a spooled replication stream into the target, with pipelining, translating what
the target needs.

Each command's size is its canonical RESP encoding (what a primary sends), which gives the
replication offset after it; the offset counts as *applied* once the target has answered the
command (the pipeline counts replies). Translations:

- ``SELECT n`` / ``SWAPDB a b`` / ``MOVE key n`` / ``COPY ... DB n``: databases through
  ``--db-map``; FLUSHALL, FLUSHDB, MULTI/EXEC and script effects pass as they come (a
  primary replicates a script's effects, and expirations as DEL/UNLINK).
- ``PING`` and ``REPLCONF`` are the link's own and are not replayed.
- Every other rewrite, and every refusal, is a rule of :mod:`migrate.sync.rules` (hash field
  TTLs per target, HGETDEL, RESTORE payloads a target cannot read, commands the target does
  not have). A refused write stops the sync (:class:`~migrate.sync.rules.ChangeRefused`)
  unless its class of loss was allowed (``--allow-loss``); then it is dropped and counted.
"""

from __future__ import annotations

from collections import Counter, deque
from pathlib import Path
from typing import BinaryIO, cast

import hiredis

from migrate.apply.target import Target as ApplyTarget
from migrate.dbmap import DbMap
from migrate.keyspec import command_keys, command_name, named_key
from migrate.protocol.pipeline import PipelineWriter
from migrate.protocol.resp import Arg, encode_command
from migrate.state.disk import state_disk_error
from migrate.sync.restore import function_restore_rule, restore_rule
from migrate.sync.rules import (
    FIELD_TTL_COMMANDS,
    VECTOR_SET_COMMANDS,
    ChangeRefused,
    Refusal,
    SlotsMigratedAtomically,
    SourceResharded,
    TargetRefused,
    field_ttl_rule,
    msetex_as_sets,
)
from migrate.sync.written import KeyReservoir

LINK_COMMANDS = {b"PING", b"REPLCONF"}
MAX_DROPPED_KEYS = 1000  # losses listed one by one in the status (all are counted)


class Translator:
    """One source command -> the commands that have the same effect on the target.

    ``target`` (what the target is) enables RESTORE rewriting; ``commands`` (the target's
    own command names, lower case) lets a command the target does not have stop the sync
    here, where a proxy-mode target would otherwise drop it without a reply; ``allow_loss``
    names the classes of loss the user accepted. ``offset`` is the source offset of the
    command being translated (set by the caller) for the stop message."""

    def __init__(self, field_ttl_mode: str | None, db_map: dict[int, int], db: int = 0, *,
                 target: ApplyTarget | None = None, commands: frozenset[str] | None = None,
                 allow_loss: frozenset[str] = frozenset()):
        self.field_ttl_mode = field_ttl_mode
        self.db_map = DbMap(db_map)
        self.db = db  # the source database the stream is in
        self.commands = commands
        self.allow_loss = allow_loss
        self.offset: int | None = None
        self.dropped: Counter[str] = Counter()  # lost by the user's choice, per command
        self.translated: Counter[str] = Counter()  # rewritten by a rule, per command
        self.translations: dict[str, str] = {}  # command -> what the rule made of it
        self.dropped_keys: list[dict[str, object]] = []  # the first MAX_DROPPED_KEYS losses
        self._field_ttl = field_ttl_rule(field_ttl_mode)
        self._restore = restore_rule(target) if target is not None else None
        self._function_restore = function_restore_rule(target) if target is not None else None
        self._dragonfly = target is not None and target.flavor == "dragonfly"
        self.touched: KeyReservoir = KeyReservoir()

    def mapped(self, db: int | bytes) -> int:
        n = int(db)
        return self.db_map.to(n)

    def __call__(self, args: list[bytes]) -> list[tuple[Arg, ...]]:
        name = args[0].upper()
        if name in LINK_COMMANDS:
            return []
        if name == b"SELECT":
            self.db = int(args[1])
            return [("SELECT", self.mapped(self.db))]
        keys = command_keys(args)  # the servers' own key specifications
        for key in (keys if keys is not None else args[1:2])[:8]:
            self.touched.add(self.db, key)
        out: list[tuple[Arg, ...]] | Refusal
        if name == b"RESTORE-ASKING":  # only a cluster source's resharding sends it
            raise SourceResharded(named_key(args), self.offset)
        if name == b"CLUSTER" and len(args) > 1 and args[1].upper() == b"SYNCSLOTS":
            raise SlotsMigratedAtomically.in_stream(args, self.offset)  # Valkey 9's slot migration
        if name == b"SWAPDB" and len(args) == 3:
            out = [("SWAPDB", self.mapped(args[1]), self.mapped(args[2]))]
        elif name == b"MOVE" and len(args) == 3:
            out = [("MOVE", args[1], self.mapped(args[2]))]
        elif name == b"COPY" and self._dragonfly and any(a.upper() == b"DB"
                                                             for a in args[3:]):
            out = Refusal("Dragonfly's COPY has no DB option (seen on Dragonfly 1.40.1: "
                          "syntax error)", "unsupported-command", [])
        elif name == b"COPY":
            copied = list(args)
            for i, a in enumerate(copied[:-1]):
                if a.upper() == b"DB":
                    copied[i + 1] = str(self.mapped(copied[i + 1])).encode()
            out = [tuple(copied)]
        elif name in FIELD_TTL_COMMANDS:
            out = self._field_ttl(name, args)
        elif name == b"MSETEX" and self.commands is not None and "msetex" not in self.commands:
            out = msetex_as_sets(args)
        elif name == b"RESTORE" and self._restore is not None:
            out = self._restore(args)
        elif name == b"FUNCTION" and self._dragonfly and len(args) > 1 and \
                args[1].upper() != b"FLUSH":
            out = Refusal("Dragonfly has no functions (its FUNCTION takes only FLUSH, as a "
                          "no-op: docs/compatibility.md 'Lua and functions on Dragonfly')",
                          "unsupported-command", [])
        elif name == b"FUNCTION" and len(args) > 1 and args[1].upper() == b"RESTORE" and \
                self._function_restore is not None:
            out = self._function_restore(args)
        elif name in VECTOR_SET_COMMANDS and self.commands is not None and \
                name.decode().lower() not in self.commands:
            out = Refusal("the target has no vector sets", "vector-set", [])
        else:
            out = [tuple(args)]
        if not isinstance(out, Refusal) and self.commands is not None:
            missing = next((c[0] for c in out if _name(c[0]) not in self.commands
                            and _name(c[0]) not in ("select", "multi", "exec")), None)
            if missing is not None:
                out = Refusal(f"the target has no {_name(missing).upper()} command",
                              "unsupported-command", [])
        if isinstance(out, Refusal):
            return self._refused(name, args, out)
        if [tuple(map(_bytes, c)) for c in out] != [tuple(args)]:
            shown = command_name(args)
            self.translated[shown] += 1
            self.translations.setdefault(shown, _how(shown, out))
        return out

    def _refused(self, name: bytes, args: list[bytes], refusal: Refusal
                 ) -> list[tuple[Arg, ...]]:
        if refusal.loss_class not in self.allow_loss or refusal.lossy is None:
            raise ChangeRefused(command_name(args), named_key(args), self.db, self.offset,
                                refusal.reason, refusal.loss_class)
        self.dropped[command_name(args)] += 1
        if len(self.dropped_keys) < MAX_DROPPED_KEYS:
            keys = command_keys(args)
            self.dropped_keys.append({
                "db": self.db, "command": command_name(args), "class": refusal.loss_class,
                "keys": [k.decode(errors="replace") for k in (keys or [])[:4]]})
        return refusal.lossy

    def figures(self) -> dict[str, object]:
        """What the rules did so far, for the status JSON and the final report."""
        return {"dropped_commands": dict(self.dropped), "dropped_keys": list(self.dropped_keys),
                "translated_commands": dict(self.translated),
                "translations": dict(self.translations)}


def _how(name: str, out: list[tuple[Arg, ...]]) -> str:
    """A translation in words: ``HGETDEL -> HDEL``, ``HPERSIST -> nothing``."""
    if not out:
        return "nothing (no effect on this target)"
    names = " + ".join(dict.fromkeys(command_name(c) for c in out))
    return f"{names} (payload rewritten)" if names == name else names


def _bytes(arg: Arg) -> bytes:
    return arg if isinstance(arg, bytes) else str(arg).encode()


def _name(arg: Arg) -> str:
    return (arg.decode() if isinstance(arg, bytes) else str(arg)).lower()


class StreamReplayer:
    """Follows a growing stream file; ``step()`` replays what has arrived."""

    def __init__(self, path: Path, start_offset: int, writer: PipelineWriter,
                 translator: Translator):
        self.path = path
        self.offset = start_offset  # offset of the last byte parsed
        self.writer = writer
        self.translator = translator
        self.reader = hiredis.Reader()
        self._fh: BinaryIO | None = None
        self._marks: deque[tuple[int, int, int]] = deque()  # (sent, offset, db)
        self._applied = (start_offset, translator.db)
        self.commands = 0
        self.refused: BaseException | None = None  # once refused, nothing more is replayed

    def _file(self) -> BinaryIO | None:
        if self._fh is None:
            try:
                self._fh = open(self.path, "rb")  # noqa: SIM115 - kept open while following
            except FileNotFoundError as exc:
                if self.path.parent.is_dir():
                    return None  # not yet: the link creates it when the stream starts
                # the spool folder is gone (another program removed it): the link may be
                # writing into the removed file, so waiting would wait for ever
                raise state_disk_error(exc, self.path.parent) or exc from None
        return self._fh

    def step(self, max_bytes: int = 4 << 20) -> int:
        """Parse and send what is in the file now (up to ``max_bytes``); bytes consumed."""
        if self.refused is not None:
            raise self.refused
        fh = self._file()
        if fh is None:
            return 0
        data = fh.read(max_bytes)
        if not data:
            return 0
        self.reader.feed(data)
        while (cmd := self.reader.gets()) is not False:
            if not isinstance(cmd, list) or not cmd:
                continue
            self.translator.offset = self.offset
            label = (command_name(cmd).encode(), named_key(cmd), self.translator.db,
                     self.offset)
            try:
                translated = self.translator(cmd)
            except ChangeRefused as exc:
                # applied up to the command before it: --resume starts at the refused one
                self._marks.append((self.writer.stats.sent, self.offset, self.translator.db))
                self.refused = exc
                raise
            self.offset += len(encode_command(cmd))
            for out in translated:
                self.writer.send(*out, label=label)
            self.commands += 1
        self._marks.append((self.writer.stats.sent, self.offset, self.translator.db))
        return len(data)

    def check_refusals(self) -> None:
        """Stop at the first replayed command the target refused (after a flush)."""
        stats = self.writer.stats
        if not stats.errors:
            return
        # the label step() gave the command: (name, key, db, offset)
        label = cast(tuple[bytes, bytes | None, int, int | None] | None,
                     stats.first_error_label)
        name, key, db, offset = label or (b"a command", None, 0, None)
        self.refused = TargetRefused(name.decode(errors="replace").upper(), key, db, offset,
                            stats.first_errors[0] if stats.first_errors else "?")
        raise self.refused

    def applied(self) -> tuple[int, int]:
        """(offset, source db) of the last command the target has answered."""
        replied = self.writer.stats.replied
        while self._marks and self._marks[0][0] <= replied:
            _, offset, db = self._marks.popleft()
            self._applied = (offset, db)
        return self._applied

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
