"""How Redis reads each directive: argument counts, sizes, repeats, and which values are secret.

Sources: redis src/config.c (``standardConfig`` table, ``MULTI_ARG_CONFIG`` flags,
``setConfigSaveOption``, ``setConfigClientOutputBufferLimitOption``,
``loadServerConfigFromString``); the lab servers for which names exist (:mod:`.known`).
"""

from __future__ import annotations

from migrate.convert.grammar import GrammarError, parse_size
from migrate.convert.known import FILE_ONLY, REDIS_DIRECTIVES, REDIS_UNLISTED

# Directives that take several arguments (MULTI_ARG_CONFIG in redis src/config.c). A single
# quoted argument is split on spaces, as Redis does: `save "900 1 300 10"`.
MULTI_ARG: frozenset[str] = frozenset({
    "save", "client-output-buffer-limit", "oom-score-adj-values", "bind", "replicaof",
    "slaveof", "latency-tracking-info-percentiles",
})

# Repeated lines add up instead of the last one winning (config.c: save points are appended
# after the first `save` line of a file; output-buffer limits are set per class; the rest are
# queued). Every other directive: the last line wins.
ACCUMULATE: frozenset[str] = frozenset({
    "save", "client-output-buffer-limit", "rename-command", "include", "loadmodule", "user",
    "sentinel",
})

# Sizes parsed with memtoull (MEMORY_CONFIG in config.c).
MEMORY: frozenset[str] = frozenset({
    "maxmemory", "maxmemory-clients", "proto-max-bulk-len", "client-query-buffer-limit",
    "repl-backlog-size", "auto-aof-rewrite-min-size", "active-defrag-ignore-bytes",
    "hash-max-listpack-value", "hash-max-ziplist-value", "zset-max-listpack-value",
    "zset-max-ziplist-value", "set-max-listpack-value", "stream-node-max-bytes",
    "hll-sparse-max-bytes", "cluster-link-sendbuf-limit", "replica-full-sync-buffer-limit",
})

# Whole value secret.
SECRET: frozenset[str] = frozenset({
    "requirepass", "masterauth", "primaryauth", "tls-key-file-pass", "tls-client-key-file-pass",
})

MASK = "***"


def known_to_redis(name: str) -> bool:
    return (name in FILE_ONLY or any(name in names for names in REDIS_DIRECTIVES.values())
            or any(name in extra for extra in REDIS_UNLISTED.values()))


def normalize_args(name: str, args: list[str]) -> list[str]:
    """Redis splits a lone argument of a multi-argument directive on spaces."""
    if name in MULTI_ARG and len(args) == 1 and args[0]:
        return args[0].split()
    return args


def check(name: str, args: list[str]) -> None:
    """Raise :class:`GrammarError` for what Redis would refuse at startup."""
    if name in FILE_ONLY:
        low, high = FILE_ONLY[name]
        if len(args) < low or (high is not None and len(args) > high):
            want = str(low) if low == high else f"at least {low}"
            raise GrammarError(f"{name} takes {want} argument(s), got {len(args)}")
        return
    if not known_to_redis(name):
        return  # a module's directive or a typo: reported as a finding, not an error
    if name not in MULTI_ARG and len(args) != 1:
        hint = " (a '#' after a value is not a comment in redis.conf)" if "#" in " ".join(
            args) else ""
        raise GrammarError(f"{name} takes 1 argument, got {len(args)}{hint}")
    if name in MEMORY:
        value = args[0]
        if not (name == "maxmemory-clients" and value.endswith("%")):
            parse_size(value)
    if name == "save":
        _check_save(args)
    elif name == "client-output-buffer-limit":
        _check_obuf(args)
    elif name in ("replicaof", "slaveof") and len(args) != 2:
        raise GrammarError(f"{name} takes a host and a port, got {len(args)} argument(s)")


def _check_save(args: list[str]) -> None:
    if len(args) == 1 and args[0] == "":
        return
    if len(args) % 2:
        raise GrammarError("save takes pairs of <seconds> <changes>")
    for value in args:
        if not value.isdigit():
            raise GrammarError(f"save: {value!r} is not a number")


def _check_obuf(args: list[str]) -> None:
    if len(args) % 4:
        raise GrammarError("client-output-buffer-limit takes groups of "
                           "<class> <hard> <soft> <seconds>")
    for i in range(0, len(args), 4):
        cls, hard, soft, secs = args[i:i + 4]
        if cls.lower() not in ("normal", "replica", "slave", "pubsub"):
            raise GrammarError(f"client-output-buffer-limit: unknown class {cls!r}")
        parse_size(hard)
        parse_size(soft)
        if not secs.isdigit():
            raise GrammarError(f"client-output-buffer-limit: {secs!r} is not a number")


def mask_args(name: str, args: list[str]) -> list[str]:
    """The arguments with every secret replaced by ``***`` (for summaries, JSON, findings)."""
    if name in SECRET:
        return [MASK if a else a for a in args]
    if name == "user":
        return [args[0], *(_mask_acl_rule(a) for a in args[1:])] if args else args
    if name == "rename-command" and len(args) == 2:
        # A renamed command's new name is a shared secret (it hides CONFIG, FLUSHALL ...).
        return [args[0], MASK if args[1] else ""]
    return list(args)


def _mask_acl_rule(rule: str) -> str:
    if rule[:1] in (">", "<", "#", "!"):
        return rule[0] + MASK
    return rule


def is_sensitive(name: str) -> bool:
    return name in SECRET or name in ("user", "rename-command")
