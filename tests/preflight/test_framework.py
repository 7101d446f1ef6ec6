"""The check framework: the registry refuses malformed checks; docs cover every check."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrate.compat.versions import default_version
from migrate.model import Finding, Severity
from migrate.preflight import base
from migrate.preflight.base import DOC_SECTIONS, Check, CheckDefinitionError
from migrate.preflight.docs import HEADINGS, checks_reference
from migrate.preflight.profile import profile_for
from migrate.preflight.registry import load_catalogue
from migrate.preflight.runner import Report

REPO = Path(__file__).resolve().parents[2]
DOCS = dict(why="w", evidence="e", remedy="r", source="s", title="t")


def _define(check_id: str, **overrides: object) -> type[Check]:
    attrs: dict[str, object] = {"id": check_id, **DOCS, **overrides}
    if "run" not in overrides:
        attrs["run"] = lambda self, ctx: iter(())
    return type("Probe", (Check,), attrs)


@pytest.fixture
def clean_registry() -> Iterator[None]:
    load_catalogue()
    saved = dict(base.REGISTRY)
    yield
    base.REGISTRY.clear()
    base.REGISTRY.update(saved)


def test_duplicate_id_is_refused(clean_registry: None) -> None:
    load_catalogue()
    with pytest.raises(CheckDefinitionError, match=r"duplicate check id 'rdb\.version-gap'"):
        _define("rdb.version-gap")


@pytest.mark.parametrize("bad_id", ["", "rdb", "RDB.gap", "rdb.version_gap", "a.b.c", "rdb.-x"])
def test_malformed_id_is_refused(clean_registry: None, bad_id: str) -> None:
    with pytest.raises(CheckDefinitionError, match="must look like"):
        _define(bad_id)


@pytest.mark.parametrize("section", ["title", *DOC_SECTIONS])
def test_missing_doc_section_is_refused(clean_registry: None, section: str) -> None:
    with pytest.raises(CheckDefinitionError, match=f"missing doc section '{section}'"):
        _define("test.missing-doc", **{section: "  "})


def test_check_without_run_is_refused(clean_registry: None) -> None:
    with pytest.raises(CheckDefinitionError, match=r"no run\(\) method"):
        _define("test.no-run", run=Check.run)


def test_catalogue_module_must_be_named_after_the_id(clean_registry: None) -> None:
    with pytest.raises(CheckDefinitionError, match=r"must live in checks/test_other\.py"):
        type("Misplaced", (Check,), {"id": "test.other", "__module__": "checks.somewhere",
                                     **DOCS, "run": lambda self, ctx: iter(())})


def test_catalogue_has_every_issue_id() -> None:
    ids = {c.id for c in load_catalogue()}
    required = {"rdb.version-gap", "data.field-ttl", "data.module-type", "modules.unsupported",
                "cluster.protocol", "lua.undeclared-keys", "lua.functions",
                "lua.unsupported-command", "commands.unsupported", "config.unsupported",
                "memory.capacity", "databases.multiple", "keys.big", "acl.users",
                "persistence.target-durability", "tls.in-use",
                "replication.replicas-attached", "notifications.keyspace"}
    assert required <= ids, required - ids


def test_every_check_doc_has_its_sections() -> None:
    text = checks_reference()
    for check in load_catalogue():
        section = text.split(f"\n## {check.id}\n", 1)
        assert len(section) == 2, f"docs/checks.md has no section for {check.id}"
        body = section[1].split("\n## ", 1)[0]
        for name in DOC_SECTIONS:
            assert f"### {HEADINGS[name]}\n\n" in body, f"{check.id}: no {name} section"
            assert getattr(check, name).strip() in body


def test_committed_checks_doc_is_current() -> None:
    assert (REPO / "docs" / "checks.md").read_text() == checks_reference()


def test_every_catalogue_module_holds_one_check() -> None:
    import checks

    spec_dir = Path(checks.__file__).parent
    modules = {p.stem for p in spec_dir.glob("*.py") if not p.stem.startswith("_")}
    assert modules == {base.module_for(c.id) for c in load_catalogue()}
    assert importlib.util.find_spec("checks") is not None


def test_default_target_version_is_the_oldest_supported() -> None:
    # What preflight finds without a version must hold on every supported version.
    assert profile_for("valkey", None).version == default_version("valkey") == "8.0.1"
    assert profile_for("dragonfly", None).version == default_version("dragonfly")


def test_every_target_data_entry_cites_a_source() -> None:
    from migrate.preflight.profile import load_targets

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            if {"value", "commands", "status", "equivalent", "directive"} & set(node):
                assert str(node.get("source", "")).strip(), f"{path} cites no source"
            for key, value in node.items():
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    walk(load_targets(), "targets")


def test_json_document_has_the_contract_keys() -> None:
    finding = Finding("x.y", Severity.WARNING, "t", "d", "r", {"k": 1}, "src")
    report = Report(source={"endpoint": "e"}, target={"flavor": "valkey"}, findings=[finding])
    doc = report.to_dict()
    assert list(doc) == ["kvmigrate_version", "source", "target", "findings", "summary"]
    assert list(doc["findings"][0]) == ["id", "severity", "title", "detail", "remediation",
                                        "evidence"]
    assert doc["summary"] == {"blocker": 0, "warning": 1, "info": 0}
