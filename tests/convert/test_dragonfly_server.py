"""A converted Dragonfly flagfile starts the real Dragonfly (which refuses unknown flags),
and every flag it sets reads back with CONFIG GET where Dragonfly has it."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrate.convert import convert, parse_file
from migrate.endpoint import raw_command
from migrate.lab.fleet import Fleet
from tests.convert.corpus import CASES, case_names, spec

GOOD = [n for n in case_names() if "error" not in spec(n) and "error_contains" not in spec(n)]


def _start_and_read_back(lab: Fleet, tmp_path: Path, conf: Path, name: str) -> int:
    result = convert(parse_file(conf, include_base=str(conf.parent)), "dragonfly")
    flags = tmp_path / f"{name}.flags"
    # paths of the source machine do not exist here: the pidfile goes to the test's folder
    # (the lab's own --dir, --port and --requirepass come after the flagfile and win)
    flags.write_text("\n".join(f"--pidfile={tmp_path / name}.pid"
                               if line.startswith("--pidfile=") else line
                               for line in result.text.splitlines()) + "\n")
    server = lab.start("dragonfly", config_file=flags, lab_defaults=False, name=name,
                       password="lab-pw")
    client = server.client()
    checked = 0
    for line in result.text.splitlines():
        if not line.startswith("--"):
            continue
        flag, _, value = line[2:].partition("=")
        if flag in ("port", "bind", "dir", "requirepass", "masterauth", "pidfile"):
            continue  # the lab's own (secrets are masked by CONFIG GET)
        got = raw_command(client, "CONFIG", "GET", flag)
        pairs = got if isinstance(got, dict) else dict(zip(got[::2], got[1::2], strict=True))
        if pairs:  # Dragonfly reads this flag back
            assert pairs[flag.encode()].decode() == value, (name, flag)
            checked += 1
    return checked


@pytest.mark.parametrize("name", GOOD)
def test_corpus_flagfiles_start_dragonfly(dragonfly_installed: object, lab: Fleet,
                                          tmp_path: Path, name: str) -> None:
    _start_and_read_back(lab, tmp_path, CASES / name / "redis.conf", name)


def test_debian_redis_conf_starts_dragonfly(dragonfly_installed: object, lab: Fleet,
                                            tmp_path: Path, debian_redis_conf: Path) -> None:
    assert _start_and_read_back(lab, tmp_path, debian_redis_conf, "debian") >= 3
