"""A RESTORE in the source's stream, written so the target can take it.

The payload's footer names the RDB version of the server that DUMPed it; a target refuses a
payload newer than its own ("DUMP payload version or checksum are wrong"), e.g. Redis 8's
RDB 12 on Valkey 8.x or 9.x. The value is read with kvmigrate's own RDB reader (the payload
wrapped as a one-key RDB) and written by the same :class:`CommandBuilder` that ``copy`` and
the initial load use: RESTORE with the target's footer where the target reads the encoding,
typed commands otherwise, and a refusal for what the target cannot hold (a module value, a
field TTL on a target without them)."""

from __future__ import annotations

import io
from collections.abc import Callable

from migrate.apply.commands import ApplyOptions, CommandBuilder
from migrate.apply.target import Target
from migrate.rdb import Entry, Function, RdbFormatError, RdbReader, split_payload
from migrate.rdb import encode as enc
from migrate.rdb.crc64 import crc64
from migrate.sync.rules import Out, Refusal


def _libraries(raw: bytes, version: int) -> list[bytes]:
    """The library codes in the raw body of a FUNCTION DUMP payload (opcode 245 records)."""
    magic = b"VALKEY%03d" % version if version >= 80 else b"REDIS%04d" % version
    body = magic + raw + b"\xff"
    data = body + crc64(body).to_bytes(8, "little")
    return [rec.code for rec in RdbReader(io.BytesIO(data)).records()
            if isinstance(rec, Function)]


def function_restore_rule(target: Target) -> Callable[[list[bytes]], Out | Refusal]:
    """``FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]``: as it is where the target reads
    the payload's RDB version; otherwise the same libraries by FUNCTION LOAD (FLUSH: after a
    FUNCTION FLUSH; REPLACE: LOAD REPLACE), which is what RESTORE does with each."""
    dump_version = target.dump_version

    def rule(args: list[bytes]) -> Out | Refusal:
        if len(args) < 3:
            return Refusal("FUNCTION RESTORE with too few arguments", "unsupported-command")
        try:
            raw, version = split_payload(args[2])
            libraries = _libraries(raw, version)
        except RdbFormatError as exc:
            return Refusal(f"a FUNCTION DUMP payload kvmigrate cannot read ({exc})",
                           "unsupported-command")
        foreign = target.flavor == "valkey" and 12 <= version < 80
        if version <= dump_version and not foreign:
            return [tuple(args)]
        policy = args[3].upper() if len(args) > 3 else b"APPEND"
        out: Out = [(b"FUNCTION", b"FLUSH")] if policy == b"FLUSH" else []
        replace = (b"REPLACE",) if policy == b"REPLACE" else ()
        out.extend((b"FUNCTION", b"LOAD", *replace, code) for code in libraries)
        return out

    return rule


def _one_key_rdb(key: bytes, raw: bytes, version: int) -> tuple[bytes, str]:
    magic = "VALKEY" if version >= 80 else "REDIS"
    head = (b"VALKEY%03d" % version) if magic == "VALKEY" else (b"REDIS%04d" % version)
    body = head + b"\xfe\x00" + raw[:1] + enc.string(key) + raw[1:] + b"\xff"
    return body + crc64(body).to_bytes(8, "little"), magic


def restore_rule(target: Target) -> Callable[[list[bytes]], Out | Refusal]:
    dump_version = target.dump_version

    def rule(args: list[bytes]) -> Out | Refusal:
        if len(args) < 4:
            return Refusal("RESTORE with too few arguments", "unsupported-command")
        key, ttl, payload = args[1], int(args[2]), args[3]
        options = [a.upper() for a in args[4:]]
        try:
            raw, version = split_payload(payload)
        except RdbFormatError as exc:
            return Refusal(f"a DUMP payload kvmigrate cannot read ({exc})",
                           "unsupported-command")
        magic = "VALKEY" if version >= 80 else "REDIS"
        # Valkey 9 takes REDIS payloads up to 11 and its own 80+, not Redis 7.4+'s 12..79
        foreign = target.flavor == "valkey" and 12 <= version < 80
        if version <= dump_version and not foreign and target.restores(raw[0], magic):
            return [tuple(args)]  # the target reads this payload as it is
        data, magic = _one_key_rdb(key, raw, version)
        builder = CommandBuilder(target, magic,
                                 ApplyOptions(replace=b"REPLACE" in options))
        out: Out = []
        try:
            for rec in RdbReader(io.BytesIO(data)).records():
                if isinstance(rec, Entry):
                    out.extend(builder.commands(rec))
        except RdbFormatError as exc:
            return Refusal(f"a DUMP payload of RDB {version} kvmigrate cannot read ({exc})",
                           "unsupported-command")
        if builder.stats.failed:
            reason = next(iter(builder.stats.failed))
            return Refusal(reason, "module" if "module" in reason else "field-ttl")
        if ttl > 0 and out:
            absolute = b"ABSTTL" in options
            out.append((b"PEXPIREAT" if absolute else b"PEXPIRE", key, ttl))
        return out

    return rule
