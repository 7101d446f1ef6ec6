"""RDB files written during the session by real lab servers from seeded data."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.lab.server import ServerProcess

WRITERS = ("redis-7.0", "redis-8", "valkey-8.0", "valkey-9")


@dataclass
class SavedRdb:
    spec: str
    server: ServerProcess
    path: Path  # a copy of the dump.rdb the server wrote


@pytest.fixture(scope="session")
def saved_rdbs(session_lab: Fleet, tmp_path_factory: pytest.TempPathFactory
               ) -> dict[str, SavedRdb]:
    """One seeded server per spec (1,500 keys: every type and encoding, big keys, TTLs,
    three databases, a field-TTL hash where the server has them), saved with SAVE."""
    out = {}
    folder = tmp_path_factory.mktemp("rdbs")
    for spec in WRITERS:
        server = session_lab.start(spec)
        seed(server.endpoint, keys=1500, seed_value=5)
        server.client(0).save()
        path = folder / f"{spec}.rdb"
        shutil.copy(Path(server.directory) / "dump.rdb", path)
        out[spec] = SavedRdb(spec, server, path)
    return out
