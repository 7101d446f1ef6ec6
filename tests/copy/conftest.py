"""A seeded Redis 8 source saved to an RDB file, shared by the copy tests."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.lab.server import ServerProcess


@dataclass
class Source:
    server: ServerProcess
    rdb: Path


@pytest.fixture(scope="session")
def redis8_source(session_lab: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Source:
    server = session_lab.start("redis-8")
    seed(server.endpoint, keys=2000, seed_value=11)
    client = server.client(0)
    client.execute_command(
        "FUNCTION", "LOAD", "#!lua name=kvlib\nredis.register_function('kvf', "
                            "function() return 1 end)")
    client.save()
    path = tmp_path_factory.mktemp("copy-src") / "redis8.rdb"
    shutil.copy(Path(server.directory) / "dump.rdb", path)
    return Source(server, path)
