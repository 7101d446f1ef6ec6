"""kvmigrate: move Redis deployments to Valkey or Dragonfly safely."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # read on first use: importlib.metadata costs start-up time that --help does not need
    if name != "__version__":
        raise AttributeError(f"module 'migrate' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("kvmigrate")
    except PackageNotFoundError:  # running from a source tree that was not installed
        found = "0.0.0+unknown"
    globals()["__version__"] = found
    return found
