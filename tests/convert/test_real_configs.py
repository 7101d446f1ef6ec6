"""The full upstream redis.conf and Debian's /etc/redis/redis.conf convert without errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migrate.convert import parse_file
from migrate.convert.dragonfly_flags import ALL_FLAGS
from tests.conftest import from_testdata
from tests.convert.conftest import UPSTREAM
from tests.convert.test_dragonfly import FLAG_LINE
from tests.helpers import run_cli


@pytest.fixture(params=["upstream", "debian"])
def real_conf(request: pytest.FixtureRequest) -> Path:
    if request.param == "upstream":
        return from_testdata(UPSTREAM.name)
    return request.getfixturevalue("debian_redis_conf")


@pytest.mark.parametrize("target", ["valkey", "dragonfly"])
def test_real_config_converts_without_errors(real_conf: Path, tmp_path: Path,
                                             target: str) -> None:
    out = tmp_path / "converted"
    r = run_cli("convert-config", str(real_conf), "--to", target, "-o", str(out))
    assert r.code == 0, r.stderr
    assert "[blocker]" not in r.stderr
    text = out.read_text()
    directives = list(parse_file(real_conf).directives())
    assert len(directives) > 60
    if target == "valkey":
        source_comments = [line for line in real_conf.read_text().splitlines()
                           if line.lstrip().startswith("#")]
        kept = set(text.splitlines())
        assert all(c in kept for c in source_comments)  # every comment kept
    else:
        for line in text.splitlines():
            if line and not line.startswith("#"):
                match = FLAG_LINE.match(line)
                assert match and match.group(1) in ALL_FLAGS, line


def test_json_has_a_fate_for_every_directive(real_conf: Path) -> None:
    r = run_cli("convert-config", str(real_conf), "--to", "dragonfly", "--format", "json")
    assert r.code == 0, r.stderr
    payload = json.loads(r.stdout)
    lines = sorted(d["line"] for d in payload["directives"])
    assert lines == sorted(d.line for d in parse_file(real_conf).directives())
