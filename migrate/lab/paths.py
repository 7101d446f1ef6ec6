"""Every path the lab uses, declared in one place (pgcopydb's copydb_paths idea)."""

from __future__ import annotations

import os
from pathlib import Path


def lab_dir() -> Path:
    """``KVMIGRATE_LAB_DIR``, or ``~/.cache/kvmigrate/lab``."""
    env = os.environ.get("KVMIGRATE_LAB_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "kvmigrate" / "lab"


def apt_dir() -> Path:
    return lab_dir() / "apt"


def servers_dir() -> Path:
    return lab_dir() / "servers"


def server_root(spec_name: str) -> Path:
    return servers_dir() / spec_name


def instances_dir() -> Path:
    return lab_dir() / "instances"


def cluster_pki_dir(name: str) -> Path:
    """The CA and certificates of TLS lab cluster ``name``."""
    return lab_dir() / "tls" / name
