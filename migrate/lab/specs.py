"""The server specs the lab knows: which Debian suite and package holds each server binary."""

from __future__ import annotations

from dataclasses import dataclass

from migrate.errors import UsageError


@dataclass(frozen=True)
class ServerSpec:
    name: str  # what users type: redis-7.0, valkey-9, ...
    flavor: str  # "redis" or "valkey"
    suite: str  # the Debian suite the server package comes from
    lib_suite: str  # the suite whose loader and libraries run it
    package: str  # the package that holds the binary
    description: str

    @property
    def binary(self) -> str:
        """The real binary in the package; ``<flavor>-server`` is a link to it."""
        return f"{self.flavor}-check-rdb"

    @property
    def server_argv0(self) -> str:
        return f"{self.flavor}-server"


SPECS: dict[str, ServerSpec] = {
    s.name: s
    for s in (
        ServerSpec("redis-7.0", "redis", "bookworm", "bookworm", "redis-tools",
                   "Redis 7.0 (Debian 12), writes RDB 10"),
        ServerSpec("redis-8.0", "redis", "trixie", "trixie", "redis-tools",
                   "Redis 8.0 (Debian 13), writes RDB 12"),
        ServerSpec("redis-8", "redis", "sid", "sid", "redis-tools",
                   "newest Redis 8 (Debian sid)"),
        ServerSpec("valkey-8.0", "valkey", "bookworm-backports", "bookworm", "valkey-tools",
                   "Valkey 8.0 (Debian 12 backports), writes RDB 11"),
        ServerSpec("valkey-8.1", "valkey", "trixie", "trixie", "valkey-tools",
                   "Valkey 8.1 (Debian 13), writes RDB 11"),
        ServerSpec("valkey-9", "valkey", "sid", "sid", "valkey-tools",
                   "newest Valkey 9 (Debian sid), writes RDB 80+"),
    )
}


# Dragonfly is no Debian package: `lab install dragonfly` takes its release or a local file
# (migrate/lab/dragonfly.py), so it is not part of `all`.
DRAGONFLY = ServerSpec("dragonfly", "dragonfly", "", "trixie", "",
                       "Dragonfly (its official release, or --from PATH)")
KNOWN: dict[str, ServerSpec] = {**SPECS, DRAGONFLY.name: DRAGONFLY}


def get_spec(name: str) -> ServerSpec:
    try:
        return KNOWN[name]
    except KeyError:
        raise UsageError(f"unknown server spec {name!r}; known specs: {', '.join(KNOWN)}") \
            from None


def resolve_specs(names: list[str]) -> list[ServerSpec]:
    """``all`` (or nothing) means every Debian-packaged spec; otherwise each name must be
    known (``dragonfly`` included)."""
    if not names or names == ["all"]:
        return list(SPECS.values())
    return [get_spec(n) for n in names]
