"""What a target cannot take from an RDB, as findings (used by ``rdb inspect --to`` and by
``copy`` before it writes). Facts: docs/compatibility.md, via :mod:`migrate.apply.target`."""

from __future__ import annotations

import time

from migrate.apply.target import Target
from migrate.compat.rdb import SOURCE, max_rdb_loadable
from migrate.model import Finding, Severity
from migrate.rdb.records import TYPE_NAMES, VALKEY_TYPE_NAMES
from migrate.rdb.summary import RdbSummary

# docs/compatibility.md: the only module type Dragonfly loads
DRAGONFLY_MODULES = {("ReJSON-RL", 3)}


def _type_label(code: int, magic: str) -> str:
    names = (VALKEY_TYPE_NAMES if magic == "VALKEY" and code in VALKEY_TYPE_NAMES
             else TYPE_NAMES).get(code, ("?", "?"))
    return f"{names[0]}/{names[1]} (type {code})"


def _key_name(key: bytes) -> str:
    return repr(key.decode("utf-8", "backslashreplace"))


def assess(summary: RdbSummary, target: Target) -> list[Finding]:
    out: list[Finding] = []
    p = summary.producer
    loadable = max_rdb_loadable(target.identity) or 0
    version_ok = p.rdb_version <= loadable and not (
        target.flavor == "valkey" and 12 <= p.rdb_version < 80)
    if p.magic == "VALKEY" and target.flavor != "valkey":
        version_ok = False
    foreign = sorted(code for code in summary.type_codes
                     if not target.restores(code, p.magic) and code != 7)
    native = version_ok and not foreign
    why = []
    if not version_ok:
        why.append(f"RDB version {p.rdb_version}")
    if foreign:
        why.append("types " + ", ".join(str(c) for c in foreign))
    out.append(Finding(
        "rdb.native-load", Severity.INFO if native else Severity.WARNING,
        f"{target} {'can' if native else 'cannot'} load this file at startup"
        + (f" ({'; '.join(why)})" if why else ""),
        detail=f"written by {p.describe()}; {target} loads RDB up to {loadable}",
        remediation="" if native else "copy it with `kvmigrate copy --from-rdb` (a logical "
                                      "copy) or write a loadable file with `--to-rdb`",
        source=SOURCE))
    not_restorable = {code: n for code, n in summary.type_codes.items()
                      if not target.restores(code, p.magic) and code not in (6, 7)}
    if not_restorable:
        labels = ", ".join(f"{_type_label(c, p.magic)}: {n}" for c, n in
                           sorted(not_restorable.items()))
        out.append(Finding(
            "rdb.transcoded-types", Severity.INFO,
            f"{sum(not_restorable.values())} key(s) use encodings {target} does not read; "
            "copy rewrites them with typed commands", detail=labels,
            evidence={"types": {str(c): n for c, n in not_restorable.items()}}, source=SOURCE))
    if summary.field_ttl_hashes:
        mode = target.field_ttl_mode
        if mode is None:
            out.append(Finding(
                "rdb.field-ttl", Severity.BLOCKER,
                f"{summary.field_ttl_hashes} hash(es) with field TTLs "
                f"({summary.fields_with_ttl} fields): {target} has no hash field expiry",
                detail="the fields would be kept without their TTLs or the keys dropped",
                remediation="migrate to Valkey 9+ (HPEXPIREAT) or remove the field TTLs first",
                evidence={"hashes": summary.field_ttl_hashes}, source=SOURCE))
        elif mode == "hexpire":
            out.append(Finding(
                "rdb.field-ttl", Severity.WARNING,
                f"{summary.field_ttl_hashes} hash(es) with field TTLs: {target} takes them as "
                "HEXPIRE seconds (rounded up) and keeps each field deadline in whole seconds "
                "(less than 1 s off); a native load fails on types 24/25",
                source=SOURCE))
    if summary.beyond_expiry_limit and target.max_ttl_ms is not None:
        db, key, at = summary.first_beyond_expiry_limit or (0, b"?", 0)
        when = time.strftime("%Y-%m-%d", time.gmtime(at / 1000))
        out.append(Finding(
            "rdb.expiry-beyond-limit", Severity.BLOCKER,
            f"{summary.beyond_expiry_limit} key(s) expire more than "
            f"{target.max_ttl_ms // 1000:,} s (about 8.5 years) ahead, first "
            f"{_key_name(key)} in db {db} (expires {when}): {target} would clamp "
            "such a TTL silently",
            detail="seen on Dragonfly 1.40.1: RESTORE and SET ... PXAT cap a TTL at 2^28-1 "
                   "seconds without an error; PEXPIREAT refuses it",
            remediation="shorten those TTLs on the source (or PERSIST them), or pass "
                        "--skip-unsupported to copy the rest and count them as failed",
            evidence={"keys": summary.beyond_expiry_limit, "first": [db, _key_name(key), at]},
            source=SOURCE))
    for name, count in sorted(summary.modules.items()):
        ok = target.flavor == "redis"
        if target.flavor == "dragonfly":
            ok = any(n == name for n, _ in DRAGONFLY_MODULES)
        first = summary.first_module_key.get(name)
        out.append(Finding(
            "rdb.module-values", Severity.WARNING if ok else Severity.BLOCKER,
            f"{count} value(s) of module type {name!r}" +
            (f" (first {_key_name(first[1])} in db {first[0]})" if first else "") +
            ("" if ok else f": {target} has no module for them"),
            detail="module values are copied only as DUMP payloads to a target that has the "
                   "same module loaded; otherwise they fail and are counted",
            remediation="" if ok else "export them with the module's own tools, or leave them",
            evidence={"module": name, "values": count}, source=SOURCE))
    if summary.module_aux:
        # Module-global state (not keys): only the same module on the target can take it, and
        # a server without that module refuses the whole file. A logical copy cannot carry it.
        ok = target.flavor == "redis"
        out.append(Finding(
            "rdb.module-aux", Severity.WARNING if ok else Severity.BLOCKER,
            f"module data outside any key ({', '.join(summary.module_aux)})"
            + ("" if ok else f": {target} has no such module"),
            detail="every server without the module refuses to load this file; a copy "
                   "cannot carry the module's own data",
            remediation="" if ok else "export it with the module's own tools, then pass "
                                      "--skip-unsupported to copy the keys without it",
            evidence={"module_aux": summary.module_aux}, source=SOURCE))
    if summary.functions and not target.loads_functions:
        out.append(Finding(
            "rdb.functions", Severity.BLOCKER,
            f"{len(summary.functions)} function librar(y/ies) ({', '.join(summary.functions)}): "
            f"{target} does not support FUNCTION/FCALL", source=SOURCE))
    elif summary.functions:
        out.append(Finding("rdb.functions", Severity.INFO,
                           f"{len(summary.functions)} function librar(y/ies) to load with "
                           "FUNCTION LOAD", source=SOURCE))
    if summary.seconds_expiry and target.flavor == "dragonfly":
        out.append(Finding("rdb.seconds-expiry", Severity.WARNING,
                           "keys use the seconds expiry opcode, which Dragonfly's loader "
                           "rejects; a logical copy is not affected", source=SOURCE))
    if summary.expired:
        out.append(Finding("rdb.expired", Severity.INFO,
                           f"{summary.expired} key(s) had already expired when read; "
                           "copy skips and counts them"))
    if summary.empty_keys:
        out.append(Finding("rdb.empty-keys", Severity.INFO,
                           f"{summary.empty_keys} empty collection(s): servers skip them on "
                           "load, and so does copy"))
    return out
