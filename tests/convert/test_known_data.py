"""The directive data in migrate/convert/known.py matches the real lab servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrate.convert.known import (
    REDIS_DEFAULTS,
    REDIS_DIRECTIVES,
    REDIS_UNLISTED,
    VALKEY_DIRECTIVES,
    VALKEY_UNLISTED,
)
from migrate.errors import LabError
from migrate.lab.fleet import Fleet

SPECS = {"redis-7.0": ("redis", "7.0"), "redis-8": ("redis", "8.0"),
         "valkey-8.0": ("valkey", "8.0"), "valkey-8.1": ("valkey", "8.1"),
         "valkey-9": ("valkey", "9.1")}
LAB_FORCED = {"port", "bind", "dir", "logfile", "daemonize", "save", "appendonly",
              "enable-debug-command"}


@pytest.mark.parametrize("spec", sorted(SPECS))
def test_config_get_lists_exactly_the_known_directives(lab: Fleet, spec: str) -> None:
    flavor, version = SPECS[spec]
    listed = set(lab.start(spec).client(decode_responses=True).config_get("*"))
    data = (REDIS_DIRECTIVES if flavor == "redis" else VALKEY_DIRECTIVES)[version]
    assert listed == set(data), (sorted(listed - data), sorted(data - listed))


@pytest.mark.parametrize("spec", ["redis-7.0", "redis-8"])
def test_redis_defaults_are_what_a_bare_server_reports(lab: Fleet, spec: str) -> None:
    got = lab.start(spec).client(decode_responses=True).config_get("*")
    want = REDIS_DEFAULTS[SPECS[spec][1]]
    differing = {k: (got.get(k), v) for k, v in want.items()
                 if k not in LAB_FORCED and got.get(k) != v}
    assert not differing


def _takes(lab: Fleet, spec: str, tmp_path: Path, name: str, value: str) -> str:
    conf = tmp_path / f"{spec}-{name}.conf"
    conf.write_text(f"{name} {value}\n")
    try:
        server = lab.start(spec, config_file=conf, name=f"{spec}-{name}")
    except LabError:
        return "refused"
    try:
        answer = server.client(decode_responses=True).config_get(name)
        return "hidden" if answer else "ignored"
    finally:
        server.stop()


@pytest.mark.parametrize("spec", ["valkey-8.0", "valkey-8.1", "valkey-9"])
def test_valkey_unlisted_directives_are_classified_as_seen(lab: Fleet, tmp_path: Path,
                                                           spec: str) -> None:
    """Every Redis directive Valkey's CONFIG GET * lacks: refused, hidden or ignored."""
    version = SPECS[spec][1]
    redis_names = set().union(*REDIS_DIRECTIVES.values(), *REDIS_UNLISTED.values())
    defaults = {**REDIS_DEFAULTS["7.0"], **REDIS_DEFAULTS["8.0"]}
    for name in sorted(redis_names - VALKEY_DIRECTIVES[version]):
        value = defaults.get(name) or "no"
        seen = _takes(lab, spec, tmp_path, name, f'"{value}"')
        expected = VALKEY_UNLISTED[version].get(name, "refused")
        assert seen == expected, name
