"""Facts about a source server, gathered once and read-only; checks judge only these.

Every field has a default so that check fixtures (YAML) can give only what they test:
:func:`source_facts_from_dict` builds the dataclasses from plain dicts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any


@dataclass
class KeyRecord:
    """One sampled key (only the big ones are kept individually)."""

    key: str
    db: int
    type: str
    encoding: str = ""
    memory: int = 0  # MEMORY USAGE bytes
    length: int = 0  # elements (or bytes for a string)


@dataclass
class KeySample:
    """A bounded SCAN sample: what was seen, per database and in total."""

    sampled: int = 0
    limit: int = 0
    complete: bool = False  # True when the sample covered every key
    types: dict[str, int] = field(default_factory=dict)  # TYPE -> count in the sample
    encodings: dict[str, int] = field(default_factory=dict)  # "type/encoding" -> count
    with_ttl: int = 0
    memory_sampled: int = 0  # sum of MEMORY USAGE over the sample
    big_keys: list[KeyRecord] = field(default_factory=list)
    field_ttl_keys: list[str] = field(default_factory=list)  # hashes with per-field TTLs
    field_ttl_checked: bool = False  # the server supports field TTLs and they were probed


@dataclass
class LuaFunctionLibrary:
    name: str
    engine: str = "LUA"
    functions: list[str] = field(default_factory=list)
    code: str = ""


@dataclass
class AclUser:
    """One ACL user; password hashes are never kept."""

    name: str
    enabled: bool = True
    nopass: bool = False
    rules: str = ""  # the ACL rules with passwords and hashes removed


@dataclass
class ShardFacts:
    """One primary of a cluster (filled by :mod:`migrate.inspect.cluster`)."""

    primary: str = ""  # host:port, never credentials
    slots: list[str] = field(default_factory=list)  # slot ranges, "0-5460"
    slot_count: int = 0
    used_memory: int = 0
    dataset_memory: int = 0  # used_memory_dataset: without the server's own overhead
    maxmemory: int = 0
    keys: int = 0
    health: str = "online"

    @property
    def data_memory(self) -> int:
        return self.dataset_memory or self.used_memory


@dataclass
class ClusterFacts:
    enabled: bool = False
    state: str = ""
    masters: int = 0
    replicas: int = 0
    slots_assigned: int = 0
    shards: list[ShardFacts] = field(default_factory=list)  # every primary, when discovered
    uncovered: list[str] = field(default_factory=list)  # slot ranges no primary serves
    failed_nodes: list[str] = field(default_factory=list)  # "host:port (fail?)" per node
    databases: int = 1  # cluster-databases (Valkey 9+); 1 elsewhere

    @property
    def discovered(self) -> bool:
        return bool(self.shards)

    def summary(self) -> dict[str, Any]:
        return {"state": self.state, "primaries": self.masters, "replicas": self.replicas,
                "slots_assigned": self.slots_assigned, "uncovered": list(self.uncovered),
                "failed_nodes": list(self.failed_nodes), "databases": self.databases,
                "shards": [{"primary": s.primary, "slots": list(s.slots), "keys": s.keys,
                            "used_memory": s.used_memory, "maxmemory": s.maxmemory}
                           for s in self.shards]}


@dataclass
class SourceFacts:
    endpoint: str = ""  # masked display URL
    flavor: str = "redis"
    version: str = "7.0.0"
    tls: bool = False
    info: dict[str, dict[str, Any]] = field(default_factory=dict)  # section -> fields
    config: dict[str, str] = field(default_factory=dict)  # secrets masked
    modules: list[dict[str, Any]] = field(default_factory=list)  # {"name", "ver"}
    commandstats: dict[str, int] = field(default_factory=dict)  # "hset" / "client|list" -> calls
    cluster: ClusterFacts = field(default_factory=ClusterFacts)
    acl_users: list[AclUser] = field(default_factory=list)
    functions: list[LuaFunctionLibrary] = field(default_factory=list)
    client_libraries: dict[str, int] = field(default_factory=dict)  # lib-name -> connections
    keyspace: dict[int, dict[str, int]] = field(default_factory=dict)  # db -> keys, expires, ...
    keyspace_pattern_subscribers: int = 0  # PUBSUB NUMPAT
    keyspace_channels: list[str] = field(default_factory=list)  # __keyspace@/__keyevent@ subs
    sample: KeySample = field(default_factory=KeySample)
    commands_sent: int = 0
    notes: list[str] = field(default_factory=list)  # what could not be gathered, and why

    def section(self, name: str) -> dict[str, Any]:
        return self.info.get(name, {})

    @property
    def total_keys(self) -> int:
        return sum(db.get("keys", 0) for db in self.keyspace.values())

    @property
    def used_memory(self) -> int:
        return int(self.section("memory").get("used_memory", 0) or 0)

    @property
    def dataset_memory(self) -> int:
        memory = self.section("memory")
        return int(memory.get("used_memory_dataset", memory.get("used_memory", 0)) or 0)

    def summary(self) -> dict[str, Any]:
        """The source facts shown in reports (no raw INFO or CONFIG dump)."""
        replication = self.section("replication")
        return {
            "endpoint": self.endpoint, "flavor": self.flavor, "version": self.version,
            "role": replication.get("role", ""),
            "mode": "cluster" if self.cluster.enabled else "standalone",
            **({"cluster": self.cluster.summary()} if self.cluster.enabled else {}),
            "keys": self.total_keys,
            "databases": {str(db): counts for db, counts in sorted(self.keyspace.items())},
            "used_memory": self.used_memory,
            "modules": [m.get("name") for m in self.modules],
            "functions": [lib.name for lib in self.functions],
            "acl_users": [u.name for u in self.acl_users],
            "client_libraries": dict(self.client_libraries),
            "sample": {"sampled": self.sample.sampled, "limit": self.sample.limit,
                       "complete": self.sample.complete, "types": dict(self.sample.types)},
            "commands_sent": self.commands_sent,
            "notes": list(self.notes),
        }


def to_plain(value: Any) -> Any:
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value


def _build(cls: type, data: dict[str, Any]) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s): {', '.join(sorted(unknown))}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        kwargs[name] = _convert(cls, name, value)
    return cls(**kwargs)


_NESTED: dict[tuple[str, str], type] = {
    ("SourceFacts", "cluster"): ClusterFacts,
    ("SourceFacts", "sample"): KeySample,
    ("TargetFacts", "cluster"): ClusterFacts,
}
_LISTS: dict[tuple[str, str], type] = {
    ("SourceFacts", "acl_users"): AclUser,
    ("SourceFacts", "functions"): LuaFunctionLibrary,
    ("KeySample", "big_keys"): KeyRecord,
    ("ClusterFacts", "shards"): ShardFacts,
}


def _convert(cls: type, name: str, value: Any) -> Any:
    nested = _NESTED.get((cls.__name__, name))
    if nested is not None and isinstance(value, dict):
        return _build(nested, value)
    item = _LISTS.get((cls.__name__, name))
    if item is not None and isinstance(value, list):
        return [_build(item, v) if isinstance(v, dict) else v for v in value]
    if (cls.__name__, name) == ("SourceFacts", "keyspace") and isinstance(value, dict):
        return {int(db): dict(counts) for db, counts in value.items()}
    return value


def source_facts_from_dict(data: dict[str, Any]) -> SourceFacts:
    """Build :class:`SourceFacts` from a plain dict (check fixtures); unknown fields fail."""
    return _build(SourceFacts, data)


@dataclass
class TargetFacts:
    """The target: from a live server (``live``) or only a flavor and version (the catalogue)."""

    flavor: str = "valkey"
    version: str = "9.1"
    live: bool = False
    endpoint: str = ""
    info: dict[str, dict[str, Any]] = field(default_factory=dict)
    config: dict[str, str] = field(default_factory=dict)
    modules: list[dict[str, Any]] = field(default_factory=list)
    commands: list[str] | None = None  # COMMAND LIST of a live target (lower case)
    cluster_enabled: bool = False
    keys: int = 0
    cluster: ClusterFacts = field(default_factory=ClusterFacts)  # a live cluster target

    def section(self, name: str) -> dict[str, Any]:
        return self.info.get(name, {})

    def summary(self) -> dict[str, Any]:
        data: dict[str, Any] = {"flavor": self.flavor, "version": self.version,
                                "live": self.live}
        if self.live:
            data.update({
                "endpoint": self.endpoint,
                "mode": "cluster" if self.cluster_enabled else "standalone",
                **({"cluster": self.cluster.summary()} if self.cluster.enabled else {}),
                "keys": self.keys,
                "maxmemory": int(self.config.get("maxmemory", "0") or 0),
                "maxmemory_policy": self.config.get("maxmemory-policy", ""),
                "modules": [m.get("name") for m in self.modules],
            })
        return data


def target_facts_from_dict(data: dict[str, Any]) -> TargetFacts:
    return _build(TargetFacts, data)
