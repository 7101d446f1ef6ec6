"""What a write from the source's stream becomes on the target, as rules with the server
behaviour each relies on; and the loud stop for a write the target cannot hold.

Every rule either keeps the command, rewrites it into commands with the same effect on the
target (the rule says why the effect is the same), or refuses it. A refusal stops the sync
(:class:`ChangeRefused`, exit 4, one line naming the command, key, database and source
offset) unless the user opted in to that class of loss with ``--allow-loss CLASS``; then the
command is dropped and counted. No value-carrying command is ever dropped otherwise.

Behaviour relied on (seen on the lab's servers, docs/compatibility.md 'Hash field TTLs'):
Redis 8.0 replicates HINCRBYFLOAT (also inside scripts) as ``HSETEX key KEEPTTL FIELDS 1 f
v``, HGETEX as HPERSIST / HPEXPIREAT, HGETDEL as HDEL, and HSETEX with a TTL as ``HSETEX key
PXAT ms FIELDS ...``. Valkey 9.1 takes those forms as they are; Valkey 8.x has none of the
field-TTL commands; Dragonfly v1.40 takes Redis's HSETEX form and HEXPIRE, not HPEXPIRE,
HPEXPIREAT, HEXPIREAT, HPERSIST or HPTTL (dragonfly src/server/hset_family.cc).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from migrate.errors import KvmError
from migrate.protocol.resp import Arg

# The classes of loss a user may accept with --allow-loss (each is counted and reported).
LOSS_CLASSES: dict[str, str] = {
    "field-ttl": "hash field TTLs on a target without them (the fields are kept, no TTL)",
    "vector-set": "vector set commands (Redis 8's vectorset module) on a target without it",
    "module": "values and commands of modules the target does not have",
    "unsupported-command": "commands the target does not have",
    "stream-counters": "a stream's entries-added and max-deleted-id where the target cannot "
                       "set them (Dragonfly; only consumer-group lag reads differently)",
}

Out = list[tuple[Arg, ...]]


class ChangeRefused(KvmError):
    """A write the target cannot hold: the sync stops here, resumable once decided."""

    def __init__(self, command: str, key: bytes | None, db: int, offset: int | None,
                 reason: str, loss_class: str):
        where = f"key {key.decode(errors='replace')!r} in db {db}" if key is not None \
            else f"db {db}"
        at = f", source offset {offset}" if offset is not None else ""
        super().__init__(
            f"the target cannot take {command} on {where}{at}: {reason}; the sync stopped "
            "before it",
            f"run again with --resume once decided; --allow-loss {loss_class} drops and "
            "counts such writes instead")
        self.command, self.loss_class = command, loss_class


class SourceResharded(ChangeRefused):
    """A key of a slot being migrated between two primaries of a cluster source arrived in
    the new owner's stream (``MIGRATE`` replicates as ``RESTORE-ASKING`` there and as ``DEL``
    in the old owner's). The two shards' streams are replayed independently, so the old
    owner's ``DEL`` could reach the target after the new owner's copy and delete the key:
    the sync stops before the first such command instead."""

    def __init__(self, key: bytes | None, offset: int | None):
        shown = key.decode(errors="replace") if key is not None else "?"
        at = f" at source offset {offset}" if offset is not None else ""
        KvmError.__init__(
            self,
            f"the source cluster is being resharded (a slot migrating between primaries: "
            f"RESTORE-ASKING of key {shown!r}{at}); kvmigrate does not follow a resharding, "
            "the sync stopped before it",
            "once the resharding is done, run again with --resume and the same --state: the "
            "shards whose slots changed load again (a --resume before it is done would meet "
            "the same move again)")
        self.command, self.loss_class = "RESTORE-ASKING", ""


class TargetRefused(KvmError):
    """The target answered a replayed write with an error: the two servers now differ, so
    the sync stops here (the write is not acknowledged as applied)."""

    def __init__(self, command: str, key: bytes | None, db: int, offset: int | None,
                 error: str):
        where = f" on key {key.decode(errors='replace')!r}" if key is not None else ""
        super().__init__(
            f"the target refused {command}{where} in db {db} (source offset {offset}): "
            f"{error}; the sync stopped",
            "fix the target (memory, ACL, version), then run again with --resume")


class SlotsMigratedAtomically(SourceResharded):
    """An atomic slot migration (Valkey 9's ``CLUSTER MIGRATESLOTS``) reached the importing
    primary's stream. Seen on the lab's Valkey 9.1: the importing primary replicates
    ``CLUSTER SYNCSLOTS ESTABLISH SOURCE <id> NAME <job> SLOTSRANGE <a> <b> ...`` first, then
    the slots' keys as plain commands (``SET``, ``RPUSH``, ...: the snapshot, then the writes
    the exporting primary still takes, which its own stream carries too), then ``SYNCSLOTS
    SNAPSHOT-EOF``, ``PAUSED``, ``FAILOVER-GRANTED`` and ``FINISH``; the exporting primary
    replicates one ``UNLINK`` per key once the slots are gone, with no marker. Replayed
    independently, the two streams would apply the writes of the migration window twice (an
    INCR) and the exporting primary's ``UNLINK`` could land after the copy and delete the
    key, so the sync stops before the first ``CLUSTER SYNCSLOTS`` (the hint is a
    resharding's). A full sync of the importing primary in the middle of a migration: its RDB
    (``VALKEY080``) records the import in progress (opcode 243, seen before the keys on
    Valkey 9.1) and its stream goes on with the migration's commands, without the
    ``ESTABLISH``: the load stops at that record (:meth:`in_rdb`)."""

    def __init__(self, seen: str, offset: int | None = None):
        super().__init__(None, offset)
        at = f" at source offset {offset}" if offset is not None else ""
        self.message = (
            f"the source cluster is being resharded by an atomic slot migration (CLUSTER "
            f"MIGRATESLOTS: {seen}{at}); kvmigrate does not follow a resharding, the sync "
            "stopped before it")
        self.args = (self.message,)
        self.command = "CLUSTER SYNCSLOTS"

    @classmethod
    def in_stream(cls, args: list[bytes], offset: int | None) -> SlotsMigratedAtomically:
        """Stopped at ``CLUSTER SYNCSLOTS <step> ...`` in the stream."""
        words = [a.decode(errors="replace") for a in args[2:]]
        step = words[0].upper() if words else "?"
        bounds = _slot_bounds(words)
        ranges = list(zip(map(int, bounds[::2]), map(int, bounds[1::2]), strict=False))
        return cls(f"CLUSTER SYNCSLOTS {step}" + (f" of slots {_ranges(ranges)}"
                                                  if ranges else ""), offset)

    @classmethod
    def in_rdb(cls, ranges: list[tuple[int, int]]) -> SlotsMigratedAtomically:
        """Stopped at the RDB's record of an import in progress (before its keys)."""
        return cls(f"the primary's RDB holds its import of slots {_ranges(ranges)} in "
                   "progress")


def _ranges(ranges: list[tuple[int, int]]) -> str:
    return " ".join(f"{a}-{b}" for a, b in ranges)


def _slot_bounds(words: list[str]) -> list[str]:
    """The numbers after ``SLOTSRANGE`` in ``CLUSTER SYNCSLOTS ESTABLISH ...``."""
    upper = [w.upper() for w in words]
    if "SLOTSRANGE" not in upper:
        return []
    bounds = []
    for word in words[upper.index("SLOTSRANGE") + 1:]:
        if not word.isdigit():
            break
        bounds.append(word)
    return bounds


def refuse_failed_keys(failed: dict[str, int], allow_loss: frozenset[str],
                       note: Callable[[str], None]) -> None:
    """Keys of an initial load the target could not take: a stop, unless their class of
    loss was allowed (then a counted note)."""
    for reason, n in failed.items():
        low = reason.lower()
        loss_class = ("vector-set" if "vectorset" in low else "module" if "module" in low
                      else "field-ttl" if "field ttl" in low
                      else "stream-counters" if "entries-added" in low else "")
        if loss_class and loss_class in allow_loss:
            note(f"{n} key(s) not written ({reason}): allowed by --allow-loss {loss_class}")
            continue
        hint = (f"--allow-loss {loss_class} copies the rest without them" if loss_class
                else "fix the target, then run again")
        raise KvmError(f"{n} key(s) of the initial copy were not written: {reason}; the sync "
                       "stopped", hint)


@dataclass(frozen=True)
class Refusal:
    reason: str
    loss_class: str
    # what to write instead when the user allowed this class of loss (None: nothing)
    lossy: Out | None = None


def parse_hsetex(args: list[bytes]) -> tuple[bytes | None, list[bytes]] | None:
    """(the TTL option or None, [field, value, ...]) of ``HSETEX key ... FIELDS n ...``."""
    ttl: bytes | None = None
    i = 2
    while i < len(args):
        word = args[i].upper()
        if word == b"FIELDS":
            n = int(args[i + 1])
            pairs = args[i + 2:i + 2 + 2 * n]
            return (ttl, pairs) if len(pairs) == 2 * n else None
        if word in (b"EX", b"PX", b"EXAT", b"PXAT"):
            ttl = word
            i += 2
            continue
        if word in (b"KEEPTTL", b"FNX", b"FXX", b"NX", b"XX"):
            i += 1
            continue
        return None
    return None


def _fields_after(args: list[bytes]) -> list[bytes] | None:
    for i, a in enumerate(args):
        if a.upper() == b"FIELDS":
            n = int(args[i + 1])
            return list(args[i + 2:i + 2 + n])
    return None


def _hgetdel(args: list[bytes]) -> Out | Refusal:
    fields = _fields_after(args)
    if not fields:
        return Refusal("HGETDEL without FIELDS", "unsupported-command")
    return [(b"HDEL", args[1], *fields)]  # same effect: HGETDEL deletes those fields


def field_ttl_rule(mode: str | None) -> Callable[[bytes, list[bytes]], Out | Refusal]:
    """The rule for hash field-TTL commands on a target whose field-TTL mode is ``mode``
    ("hpexpireat": Redis 7.4+ / Valkey 9; "hexpire": Dragonfly; None: no field TTLs)."""

    def full(name: bytes, args: list[bytes]) -> Out | Refusal:
        return [tuple(args)]  # the same commands, the same syntax

    def none(name: bytes, args: list[bytes]) -> Out | Refusal:
        if name == b"HGETDEL":
            return _hgetdel(args)
        if name == b"HPERSIST":
            return []  # the target keeps no field TTLs: removing one changes nothing
        if name == b"HSETEX":
            parsed = parse_hsetex(args)
            if parsed is None:
                return Refusal("an HSETEX form kvmigrate does not know", "unsupported-command")
            ttl, pairs = parsed
            hset: Out = [(b"HSET", args[1], *pairs)]
            if ttl is None:  # no TTL or KEEPTTL: the values are all there is to carry
                return hset
            return Refusal("the target has no hash field TTLs", "field-ttl", hset)
        if name == b"HGETEX":
            words = {a.upper() for a in args[2:]}
            if b"PERSIST" in words:
                return []
            return Refusal("the target has no hash field TTLs", "field-ttl", [])
        return Refusal("the target has no hash field TTLs", "field-ttl", [])

    def dragonfly(name: bytes, args: list[bytes]) -> Out | Refusal:
        if name == b"HGETDEL":
            return _hgetdel(args)
        if name in (b"HPEXPIREAT", b"HEXPIREAT"):
            at_ms = int(args[2]) * (1 if name == b"HPEXPIREAT" else 1000)
            seconds = max(1, math.ceil((at_ms - time.time() * 1000) / 1000))
            return [("HEXPIRE", args[1], seconds, *args[3:])]
        if name == b"HPEXPIRE":
            return [("HEXPIRE", args[1], max(1, math.ceil(int(args[2]) / 1000)), *args[3:])]
        if name in (b"HEXPIRE", b"HSETEX"):
            return [tuple(args)]
        return Refusal(f"Dragonfly has no {name.decode()}", "field-ttl", [])

    if mode == "hpexpireat":
        return full
    if mode == "hexpire":
        return dragonfly
    return none


def msetex_as_sets(args: list[bytes]) -> Out | Refusal:
    """``MSETEX numkeys key value ... [NX|XX] [EX|PX|EXAT|PXAT n|KEEPTTL]`` (Valkey 9.1) for
    a target without it: one SET per key with the same expiry. The condition is dropped: the
    source replicates an MSETEX only once it held for every key, and the target's keys are
    the source's, so each SET has the effect the MSETEX had."""
    try:
        n = int(args[1])
    except (IndexError, ValueError):
        return Refusal("an MSETEX form kvmigrate does not know", "unsupported-command")
    pairs, rest = args[2:2 + 2 * n], args[2 + 2 * n:]
    expiry: list[bytes] = []
    i = 0
    while i < len(rest):
        word = rest[i].upper()
        if word in (b"NX", b"XX", b"KEEPTTL"):
            expiry += [word] if word == b"KEEPTTL" else []
            i += 1
        elif word in (b"EX", b"PX", b"EXAT", b"PXAT") and i + 1 < len(rest):
            expiry = [word, rest[i + 1]]
            i += 2
        else:
            return Refusal("an MSETEX form kvmigrate does not know", "unsupported-command")
    if len(pairs) != 2 * n:
        return Refusal("an MSETEX form kvmigrate does not know", "unsupported-command")
    return [(b"SET", key, value, *expiry) for key, value in zip(pairs[::2], pairs[1::2],
                                                                strict=True)]


FIELD_TTL_COMMANDS = {b"HEXPIRE", b"HPEXPIRE", b"HEXPIREAT", b"HPEXPIREAT", b"HPERSIST",
                      b"HSETEX", b"HGETEX", b"HGETDEL"}
VECTOR_SET_COMMANDS = {b"VADD", b"VREM", b"VSETATTR"}
