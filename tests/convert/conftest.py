"""Fixtures for config conversion: Debian's real /etc/redis/redis.conf, unpacked from the
bookworm redis-server package (downloaded once into the lab's apt cache)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import TESTDATA

UPSTREAM = TESTDATA / "redis.conf.upstream"
CASES = Path(__file__).resolve().parent / "cases"


@pytest.fixture(scope="session")
def debian_redis_conf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from migrate.lab import paths
    from migrate.lab.install import AptCache

    cache = AptCache(paths.apt_dir())
    try:
        cache.ensure_lists(lambda _msg: None)
        [deb] = cache.download("bookworm", ["redis-server"])
    except Exception as exc:  # a failure with the reason, never a skip
        pytest.fail(f"cannot download Debian's redis-server package: {exc}", pytrace=False)
    root = tmp_path_factory.mktemp("redis-server-deb")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    conf = root / "etc" / "redis" / "redis.conf"
    assert conf.is_file(), "the redis-server package has no /etc/redis/redis.conf"
    return conf
