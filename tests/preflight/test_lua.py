"""The Lua analyser against a corpus of scripts with the expected verdict for each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate.inspect.lua import analyse

CORPUS = Path(__file__).parent / "lua"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((CORPUS / "expected.yaml").read_text())


def test_corpus_is_complete() -> None:
    scripts = {p.name for p in CORPUS.glob("*.lua")}
    assert scripts == set(EXPECTED)
    assert len(scripts) >= 12
    verdicts = [e["verdict"] for e in EXPECTED.values()]
    assert verdicts.count("declared") >= 5 and verdicts.count("undeclared") >= 7


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_script_verdict(name: str) -> None:
    expected = EXPECTED[name]
    kind = expected.get("kind", "script")
    result = analyse((CORPUS / name).read_text(), name, kind=kind)
    assert not result.parse_error
    found = [a.describe() for a in result.undeclared]
    if expected["verdict"] == "declared":
        assert found == []
    else:
        assert found, f"{name}: no undeclared key access found"
    for reason in expected.get("reasons", []):
        assert any(reason in line for line in found), (reason, found)
    if "count" in expected:
        assert len(found) == expected["count"], found
    if "commands" in expected:
        assert set(result.commands) == set(expected["commands"])
    for flag in expected.get("flags", []):
        assert flag in result.flags


def test_lines_point_at_the_call() -> None:
    result = analyse((CORPUS / "bullmq_like_add_job.lua").read_text(), "job")
    assert [a.line for a in result.undeclared] == [9]


def test_syntax_error_is_reported_not_raised() -> None:
    result = analyse("local x = = 1", "broken")
    assert result.parse_error and not result.undeclared


def test_dynamic_command_name_is_counted() -> None:
    result = analyse("return redis.call(ARGV[1], KEYS[1])", "dyn")
    assert result.dynamic_commands == 1 and not result.undeclared
