"""Gather :class:`SourceFacts` / :class:`TargetFacts` from a live server, read-only.

INFO (all sections), CONFIG GET *, MODULE LIST, cluster state, ACL LIST, FUNCTION LIST
WITHCODE, CLIENT LIST library names, PUBSUB counts, and a key sample bounded by ``sample``
(see :mod:`migrate.inspect.sample`). Never KEYS, never a write, never CONFIG SET: every
command goes through :class:`Probe`, which refuses anything else and counts what it sends.
"""

from __future__ import annotations

from typing import Any

from migrate import endpoint as endpoint_module
from migrate.endpoint import Endpoint
from migrate.inspect import cluster
from migrate.inspect.facts import (
    AclUser,
    LuaFunctionLibrary,
    SourceFacts,
    TargetFacts,
)
from migrate.inspect.info import commandstats_of, keyspace_of, parse_info
from migrate.inspect.probe import Probe, pairs, text
from migrate.inspect.sample import sample_keys
from migrate.serverinfo import identify

KVMIGRATE_NAME = getattr(endpoint_module, "CLIENT_NAME", "kvmigrate")
SECRET_WORDS = ("pass", "auth", "secret")  # requirepass, masterauth, tls-key-file-pass, ...


def masked_config(reply: Any) -> dict[str, str]:
    config = {name: text(value) for name, value in pairs(reply).items()}
    for name, value in config.items():
        if value and any(word in name.lower() for word in SECRET_WORDS):
            config[name] = "***"
    return config


def parse_acl_user(line: str) -> AclUser:
    tokens = line.split()
    name = tokens[1] if len(tokens) > 1 else "?"
    rest = tokens[2:]
    kept = [t for t in rest if not t.startswith(("#", ">", "<", "!"))]
    return AclUser(name=name, enabled="on" in rest, nopass="nopass" in rest,
                   rules=" ".join(t for t in kept if t not in ("on", "off", "nopass")))


def parse_functions(reply: Any) -> list[LuaFunctionLibrary]:
    libraries = []
    for entry in reply or []:
        lib = pairs(entry)
        names = [text(pairs(f).get("name")) for f in lib.get("functions") or []]
        libraries.append(LuaFunctionLibrary(name=text(lib.get("library_name")),
                                            engine=text(lib.get("engine")), functions=names,
                                            code=text(lib.get("library_code"))))
    return libraries


def client_libraries(raw: Any) -> dict[str, int]:
    """Connections per ``lib-name`` (Redis 7.2+), leaving out kvmigrate's own."""
    counts: dict[str, int] = {}
    for line in text(raw).splitlines():
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if fields.get("cmd") == "client|list" or fields.get("name") == KVMIGRATE_NAME:
            continue  # our own connection, or another kvmigrate command's
        lib = fields.get("lib-name") or "(unnamed)"
        counts[lib] = counts.get(lib, 0) + 1
    return counts


def _modules(probe: Probe) -> list[dict[str, Any]]:
    reply = probe.try_call("MODULE", "LIST") or []
    modules = []
    for entry in reply:
        data = pairs(entry)
        modules.append({"name": text(data.get("name")), "ver": data.get("ver")})
    return modules


def gather_source(endpoint: Endpoint, *, sample: int = 10_000) -> SourceFacts:
    """Everything preflight knows about the source, from read-only commands; a cluster node
    leads to every primary of its cluster (:mod:`migrate.inspect.cluster`)."""
    probe = Probe(endpoint)
    try:
        notes: list[str] = []
        libs_raw = probe.try_call("CLIENT", "LIST")  # first: only our one connection exists
        info = parse_info(probe.call("INFO", "all"))
        identity = identify(info.get("server", {}))
        config_reply = probe.try_call("CONFIG", "GET", "*")
        if config_reply is None:
            notes.append("CONFIG GET refused (renamed or not permitted): config checks are "
                         "partial")
        acl_raw = probe.try_call("ACL", "LIST")
        functions_raw = probe.try_call("FUNCTION", "LIST", "WITHCODE")
        numpat = probe.try_call("PUBSUB", "NUMPAT")
        channels = probe.try_call("PUBSUB", "CHANNELS", "__key*@*__:*") or []
        config = masked_config(config_reply)
        facts = SourceFacts(
            endpoint=endpoint.display(), flavor=identity.flavor, version=identity.version_text,
            tls=endpoint.tls, info=info, config=config,
            modules=_modules(probe), commandstats=commandstats_of(info),
            cluster=cluster.cluster_facts(probe, info, config),
            acl_users=[parse_acl_user(text(line)) for line in acl_raw or []],
            functions=parse_functions(functions_raw),
            client_libraries=client_libraries(libs_raw) if libs_raw is not None else {},
            keyspace=keyspace_of(info), keyspace_pattern_subscribers=int(numpat or 0),
            keyspace_channels=sorted(text(c) for c in channels), notes=notes)
        others = 0
        if facts.cluster.enabled:
            others = cluster.gather_source_cluster(endpoint, facts, identity, limit=sample)
        else:
            facts.sample = sample_keys(probe, facts, identity, limit=sample)
        facts.commands_sent = probe.sent + others
        return facts
    finally:
        probe.close()


def gather_target(endpoint: Endpoint) -> TargetFacts:
    """What preflight needs from a live target: identity, config, modules, commands, size;
    for a cluster node, its cluster's primaries and totals (:mod:`migrate.inspect.cluster`)."""
    probe = Probe(endpoint)
    try:
        info = parse_info(probe.call("INFO", "all"))
        identity = identify(info.get("server", {}))
        commands = probe.try_call("COMMAND", "LIST")
        if commands is None:
            commands = [entry[0] for entry in probe.call("COMMAND") or [] if entry]
        facts = TargetFacts(
            flavor=identity.flavor, version=identity.version_text, live=True,
            endpoint=endpoint.display(), info=info,
            config=masked_config(probe.try_call("CONFIG", "GET", "*")),
            modules=_modules(probe), commands=sorted(text(c).lower() for c in commands),
            cluster_enabled=bool(int(info.get("cluster", {}).get("cluster_enabled", 0) or 0)),
            keys=sum(db.get("keys", 0) for db in keyspace_of(info).values()))
    finally:
        probe.close()
    if facts.cluster_enabled:
        cluster.gather_target_cluster(endpoint, facts)
    return facts
