"""kvmigrate: move Redis deployments to Valkey or Dragonfly safely."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kvmigrate")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
