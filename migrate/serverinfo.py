"""Which server is this? Redis, Valkey or Dragonfly, and which version, from ``INFO server``.

Valkey reports ``server_name:valkey`` and ``valkey_version`` (its ``redis_version`` is frozen
at 7.2.4); Dragonfly reports ``dragonfly_version`` (its ``redis_version`` is hard-coded);
Redis has neither (docs/compatibility.md 'Identifying the server').
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from migrate.errors import KvmError


@dataclass(frozen=True)
class ServerIdentity:
    flavor: str  # "redis", "valkey" or "dragonfly"
    version: tuple[int, ...]
    version_text: str

    def __str__(self) -> str:
        return f"{self.flavor} {self.version_text}"

    def at_least(self, *version: int) -> bool:
        return self.version >= version


def parse_version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.strip().lstrip("v").split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    if not parts:
        raise KvmError(f"unknown server version {text!r}")
    return tuple(parts)


def identify(info_server: dict[str, Any]) -> ServerIdentity:
    """Identify a server from its ``INFO server`` section (as a dict)."""
    if "dragonfly_version" in info_server:
        text = str(info_server["dragonfly_version"]).removeprefix("df-")
        return ServerIdentity("dragonfly", parse_version(text), text.lstrip("v"))
    if str(info_server.get("server_name", "")).lower() == "valkey" or "valkey_version" in \
            info_server:
        text = str(info_server["valkey_version"])
        return ServerIdentity("valkey", parse_version(text), text)
    if "redis_version" in info_server:
        text = str(info_server["redis_version"])
        return ServerIdentity("redis", parse_version(text), text)
    raise KvmError("the server's INFO names no known server (no redis_version, "
                   "valkey_version or dragonfly_version)",
                   "kvmigrate supports Redis, Valkey and Dragonfly")
