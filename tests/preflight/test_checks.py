"""Every check against its pass/fail fixtures (tests/preflight/fixtures/<id>.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate.inspect.facts import source_facts_from_dict, target_facts_from_dict
from migrate.preflight.context import Context
from migrate.preflight.profile import profile_for
from migrate.preflight.registry import load_catalogue
from migrate.preflight.scripts import analyse_all

FIXTURES = Path(__file__).parent / "fixtures"


def _cases() -> list[Any]:
    params = []
    for path in sorted(FIXTURES.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        for case in data["cases"]:
            params.append(pytest.param(data["check"], case, id=f"{data['check']}:{case['name']}"))
    return params


def context_for(case: dict[str, Any]) -> Context:
    source = source_facts_from_dict(case.get("source") or {})
    target = target_facts_from_dict(case.get("target") or {"flavor": "valkey",
                                                           "version": "9.1"})
    scripts = [(s["name"], s["code"]) for s in case.get("scripts") or []]
    return Context(source=source, target=target,
                   profile=profile_for(target.flavor, target.version),
                   scripts=analyse_all(scripts, source.functions))


@pytest.mark.parametrize(("check_id", "case"), _cases())
def test_check_fixture(check_id: str, case: dict[str, Any]) -> None:
    checks = {c.id: c for c in load_catalogue()}
    findings = list(checks[check_id]().run(context_for(case)))
    assert all(f.id == check_id for f in findings)
    assert sorted(f.severity.value for f in findings) == sorted(case["expect"]), \
        [(f.severity.value, f.title) for f in findings]
    if "title_contains" in case:
        assert any(case["title_contains"] in f.title for f in findings), \
            [f.title for f in findings]
    for f in findings:
        assert f.title and f.source, f


def test_every_check_has_pass_and_fail_fixtures() -> None:
    covered: dict[str, set[bool]] = {}
    for path in FIXTURES.glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        assert path.stem == data["check"], f"{path.name} holds cases of {data['check']}"
        for case in data["cases"]:
            failing = any(s in ("blocker", "warning") for s in case["expect"])
            covered.setdefault(data["check"], set()).add(failing)
    for check in load_catalogue():
        assert covered.get(check.id) == {True, False}, \
            f"{check.id} needs a passing and a failing (warning or blocker) fixture"
