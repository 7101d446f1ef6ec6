"""INFO replies as data: sections and fields, the keyspace line per database, command counts."""

from __future__ import annotations

from typing import Any

from migrate.inspect.probe import text


def parse_info(raw: Any) -> dict[str, dict[str, Any]]:
    """INFO text as {section: {field: value}}; numbers become int or float."""
    sections: dict[str, dict[str, Any]] = {}
    current = sections.setdefault("server", {})
    for line in text(raw).splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            current = sections.setdefault(line.lstrip("# ").lower(), {})
            continue
        name, sep, value = line.partition(":")
        if sep:
            current[name] = _number(value)
    return sections


def _number(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def parse_kv_list(value: str) -> dict[str, Any]:
    """``keys=1,expires=0,avg_ttl=0`` as a dict."""
    out: dict[str, Any] = {}
    for part in str(value).split(","):
        k, sep, v = part.partition("=")
        if sep:
            out[k] = _number(v)
    return out


def keyspace_of(info: dict[str, dict[str, Any]]) -> dict[int, dict[str, int]]:
    spaces: dict[int, dict[str, int]] = {}
    for name, value in info.get("keyspace", {}).items():
        if name.startswith("db") and name[2:].isdigit():
            spaces[int(name[2:])] = {k: int(v) for k, v in parse_kv_list(value).items()
                                     if isinstance(v, int)}
    return spaces


def commandstats_of(info: dict[str, dict[str, Any]]) -> dict[str, int]:
    stats: dict[str, int] = {}
    for name, value in info.get("commandstats", {}).items():
        if name.startswith("cmdstat_"):
            stats[name.removeprefix("cmdstat_").lower()] = int(parse_kv_list(value)
                                                              .get("calls", 0))
    return stats
