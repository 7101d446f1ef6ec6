"""Config conversion: redis.conf (or a live Redis) to valkey.conf or a Dragonfly flagfile.

``load(path | url)`` reads the source, ``convert(doc, target, version)`` returns a
:class:`~migrate.convert.result.Conversion` with the text, each directive's fate and the
findings. Nothing here prints or writes files: the CLI does.
"""

from __future__ import annotations

from pathlib import Path

from migrate.convert import to_dragonfly, to_valkey
from migrate.convert.document import ConfigDocument, ConfigError, parse_file, parse_text
from migrate.convert.result import Conversion, Fate
from migrate.errors import UsageError

TARGETS = ("valkey", "dragonfly")


def load(path: str | Path | None = None, *, from_server: str | None = None,
         include_base: str | Path | None = None) -> ConfigDocument:
    if (path is None) == (from_server is None):
        raise UsageError("give a config FILE or --from-server URL (one of them)")
    if from_server is not None:
        from migrate.convert.live import read_server

        return read_server(from_server)
    assert path is not None  # exactly one of the two was given
    return parse_file(path, include_base=include_base)


def convert(doc: ConfigDocument, target: str, target_version: str | None = None) -> Conversion:
    if target == "valkey":
        return to_valkey.convert(doc, target_version)
    if target == "dragonfly":
        return to_dragonfly.convert(doc, target_version)
    raise UsageError(f"unknown target {target!r}", f"--to {' or '.join(TARGETS)}")


__all__ = ["TARGETS", "ConfigDocument", "ConfigError", "Conversion", "Fate", "convert", "load",
           "parse_file", "parse_text"]
