"""The layers of ``migrate/``: no import cycle, and no import upward (docs/architecture.md).

Every ``import`` in the source counts, wherever it is written: at module level, inside a
function (a lazy import is still a dependency), or under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "migrate"

# Top-down. A package (or top-level module) of migrate/ imports only from layers below its
# own; two entries of one layer never import each other. "__init__" is migrate/__init__.py.
LAYERS: list[tuple[str, ...]] = [
    ("__main__",),
    ("cli",),  # thin commands: parse, call one engine, print, exit code
    ("report",),  # the review of a playbook run
    ("cutover",),  # cut-over and rollback (a rollback runs a reverse sync)
    ("orchestrate",),  # the sync run script (mode choice, phases), playbooks
    ("cluster",),  # the cluster sync: a replica- or scan-mode reader per source primary
    ("proxy",),  # proxy mode: kvmigrate as the target's primary, on sync's link
    ("sync",),  # the sync engines (native, replica, scan), the change pipeline
    ("verify", "apply", "preflight", "convert", "lab"),  # engines that sync builds on
    ("inspect",),  # read-only facts of a live server
    ("protocol", "rdb", "remote", "state", "compat"),  # connections, RDB, state folder
    ("keyspec", "keyglob", "dbmap", "model"),
    ("endpoint", "serverinfo"),
    ("errors", "__init__"),
]


@dataclass(frozen=True)
class Import:
    source: str  # module doing the import: migrate.sync.scan
    target: str  # module imported: migrate.state.ledger
    where: str  # migrate/sync/scan.py:41

    def __str__(self) -> str:
        return f"{self.where}: {self.source} imports {self.target}"


def modules(root: Path) -> dict[str, Path]:
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(root: Path) -> list[Import]:
    """Every import of one module of ``root`` by another (module level and inside
    functions)."""
    known = modules(root)
    found = []
    for name, path in known.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        where = f"{path.relative_to(root.parent)}"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[:len(package) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known
                           else module for alias in node.names]
            for target in targets:
                while target and target not in known:  # import a.b.c names module a.b.c
                    target = target.rpartition(".")[0]
                if target and target != name:
                    found.append(Import(name, target, f"{where}:{node.lineno}"))
    return list(dict.fromkeys(found))  # one per line, however many names it imports


def unit(module: str) -> str:
    """The layered unit a module belongs to: its package under migrate/, or itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _cycle_report(component: list[str], found: list[Import], of: Callable[[str], str]) -> str:
    inside = set(component)
    edges = sorted({str(i) for i in found if of(i.source) in inside and of(i.target) in inside
                    and of(i.source) != of(i.target)})
    return f"cycle between {', '.join(component)}:\n    " + "\n    ".join(edges)


def problems(root: Path, layers: list[tuple[str, ...]]) -> list[str]:
    """Each import against the layer order, each cycle between packages or modules, and each
    package the layer order does not place; one line (or block) each."""
    layer_of = {name: i for i, layer in enumerate(layers) for name in layer}
    found = imports(root)
    out = []
    for name in sorted({unit(m) for m in modules(root)} - set(layer_of)):
        out.append(f"migrate/{name} is in no layer of tests/test_layers.py LAYERS: place it")
    for imp in found:
        src, dst = unit(imp.source), unit(imp.target)
        if src == dst or src not in layer_of or dst not in layer_of:
            continue
        if layer_of[dst] <= layer_of[src]:
            how = "within its own layer" if layer_of[dst] == layer_of[src] else "upward"
            out.append(f"{imp} ({src} -> {dst}: {how})")
    by_unit: dict[str, set[str]] = defaultdict(set)
    by_module: dict[str, set[str]] = defaultdict(set)
    for imp in found:
        by_module[imp.source].add(imp.target)
        if unit(imp.source) != unit(imp.target):
            by_unit[unit(imp.source)].add(unit(imp.target))
    for component in cycles(by_unit):
        out.append(_cycle_report(component, found, unit))
    for component in cycles(by_module):
        out.append(_cycle_report(component, found, lambda m: m))
    return out


def test_migrate_follows_the_layers() -> None:
    found = problems(ROOT, LAYERS)
    assert not found, "imports against docs/architecture.md's layers:\n" + "\n".join(found)


def test_every_kind_of_import_is_seen(tmp_path: Path) -> None:
    """The scan sees function-level and relative imports, and names the offending line."""
    pkg = tmp_path / "migrate"
    for folder in ("low", "high"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "high" / "engine.py").write_text("from migrate.low import base\n")
    (pkg / "low" / "base.py").write_text("def f():\n    from ..high import engine\n")
    (pkg / "low" / "a.py").write_text("from . import b\n")
    (pkg / "low" / "b.py").write_text("def g():\n    import migrate.low.a\n")
    found = problems(pkg, [("high",), ("low",), ("__init__",)])
    assert "migrate/low/base.py:2: migrate.low.base imports migrate.high.engine " \
           "(low -> high: upward)" in found
    assert any(p.startswith("cycle between high, low:") for p in found)
    assert any(p.startswith("cycle between migrate.low.a, migrate.low.b:") for p in found)
    assert problems(pkg, [("low",), ("high",), ("__init__",)])[0].startswith(
        "migrate/high/engine.py:1: migrate.high.engine imports migrate.low.base")
    assert problems(pkg, [("high",), ("__init__",)])[0] == \
        "migrate/low is in no layer of tests/test_layers.py LAYERS: place it"
