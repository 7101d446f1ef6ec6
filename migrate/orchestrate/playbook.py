"""Playbooks: YAML runbooks of ordered steps with parameters, variables and gates.

A step is one of:

- ``run: <kvmigrate command>`` with ``with:`` parameters, turned into that command's options
  (``max_pause_ms: 1500`` -> ``--max-pause-ms 1500``; ``true`` -> a flag);
- ``remote: fetch | push | run | service | check-disk | check-memory`` on ``host:``
  (``ssh://user@host[:port]``), over SSH with host keys checked;
- ``gate: approval`` (an operator says yes) or ``gate: postpone`` (wait while a file exists).

``background: true`` on a ``run: sync`` step starts ``sync --follow`` and goes on once it
follows the source (caught up and verified); the sync keeps running through the later steps
(a cut-over stops it) and is stopped when the playbook ends. It needs ``state:``.

``${name}`` in any string is a variable, from ``--var name=value``, ``--vars FILE`` or the
playbook's defaults; a step with ``when: name`` runs only when that variable is set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from migrate.endpoint import mask_url
from migrate.errors import UsageError

KINDS = ("run", "remote", "gate")
RUN_COMMANDS = ("preflight", "convert-config", "sync", "verify", "copy", "cutover",
                "rollback", "rdb inspect")
REMOTE_OPS = ("fetch", "push", "run", "service", "check-disk", "check-memory")
GATES = ("approval", "postpone")
VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
BUILTIN_DIR = Path(__file__).resolve().parent.parent.parent / "playbooks"


@dataclass(frozen=True)
class VarSpec:
    name: str
    required: bool = False
    default: str | None = None
    description: str = ""
    secret: bool = False


@dataclass(frozen=True)
class Step:
    name: str
    kind: str
    op: str
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    when: str | None = None
    background: bool = False


@dataclass(frozen=True)
class Playbook:
    name: str
    description: str
    path: Path
    vars: dict[str, VarSpec]
    steps: list[Step]


def playbook_dirs() -> list[Path]:
    return [Path("playbooks"), BUILTIN_DIR]


def available() -> list[Path]:
    seen: dict[str, Path] = {}
    for d in playbook_dirs():
        if d.is_dir():
            for p in sorted(d.glob("*.yaml")):
                seen.setdefault(p.stem, p)
    return [seen[k] for k in sorted(seen)]


def find(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or "/" in name_or_path:
        if not path.is_file():
            raise UsageError(f"no playbook file {name_or_path}")
        return path
    for candidate in available():
        if candidate.stem == name_or_path:
            return candidate
    names = ", ".join(p.stem for p in available()) or "none"
    raise UsageError(f"unknown playbook {name_or_path!r}; known: {names}")


def load(name_or_path: str) -> Playbook:
    path = find(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
        raise UsageError(f"{path}: a playbook is a mapping with a list of steps")
    specs = {}
    for name, raw in (data.get("vars") or {}).items():
        raw = raw if isinstance(raw, dict) else {"default": raw}
        default = raw.get("default")
        specs[name] = VarSpec(name, bool(raw.get("required", False)),
                              None if default is None else str(default),
                              str(raw.get("description", "")), bool(raw.get("secret", False)))
    steps = [_step(path, i, raw) for i, raw in enumerate(data["steps"], 1)]
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise UsageError(f"{path}: step names must be unique")
    playbook = Playbook(str(data.get("name", path.stem)), str(data.get("description", "")),
                        path, specs, steps)
    for step in steps:  # every variable a step uses must be declared
        for var in _vars_in(step.params) | ({step.when} if step.when else set()):
            if var not in specs:
                raise UsageError(f"{path}: step {step.name!r} uses undeclared variable {var!r}")
    return playbook


def _step(path: Path, index: int, raw: Any) -> Step:
    where = f"{path}: step {index}"
    if not isinstance(raw, dict) or "name" not in raw:
        raise UsageError(f"{where}: a step is a mapping with a name")
    kinds = [k for k in KINDS if k in raw]
    if len(kinds) != 1:
        raise UsageError(f"{where} ({raw['name']}): give exactly one of {', '.join(KINDS)}")
    kind = kinds[0]
    op = str(raw[kind])
    allowed = {"run": RUN_COMMANDS, "remote": REMOTE_OPS, "gate": GATES}[kind]
    if op not in allowed:
        raise UsageError(f"{where} ({raw['name']}): unknown {kind} {op!r}; one of "
                         f"{', '.join(allowed)}")
    params = raw.get("with") or {}
    if not isinstance(params, dict):
        raise UsageError(f"{where} ({raw['name']}): `with` must be a mapping")
    for key in params:
        if not isinstance(key, str):  # YAML reads a bare yes/no/on/off key as a boolean
            raise UsageError(f"{where} ({raw['name']}): parameter name {key!r} is not text",
                             'quote it, e.g. "yes": true')
    background = raw.get("background", False)
    if background not in (True, False):
        raise UsageError(f"{where} ({raw['name']}): `background` is true or false")
    if background and (kind, op) != ("run", "sync"):
        raise UsageError(f"{where} ({raw['name']}): only a `run: sync` step can run in the "
                         "background")
    if background and not params.get("state"):
        raise UsageError(f"{where} ({raw['name']}): a background sync needs `state:` in "
                         "`with`, so later steps can find it")
    return Step(str(raw["name"]), kind, op, params, str(raw.get("description", "")),
                raw.get("when"), bool(background))


def _vars_in(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(VAR_RE.findall(value))
    if isinstance(value, dict):
        return set().union(*(_vars_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_vars_in(v) for v in value)) if value else set()
    return set()


def resolve_vars(playbook: Playbook, given: dict[str, str]) -> dict[str, str]:
    unknown = sorted(set(given) - set(playbook.vars))
    if unknown:
        raise UsageError(f"playbook {playbook.name} has no variable {', '.join(unknown)}",
                         f"its variables: {', '.join(playbook.vars)}")
    values = {n: s.default for n, s in playbook.vars.items() if s.default is not None}
    values.update(given)
    missing = [n for n, s in playbook.vars.items() if s.required and not values.get(n)]
    if missing:
        raise UsageError(f"playbook {playbook.name} needs --var {'=... --var '.join(missing)}=...",
                         "see `kvmigrate playbook show " + playbook.name + "`")
    # defaults may refer to other variables
    for _ in range(5):
        values = {k: substitute(v, values) for k, v in values.items()}
    return values


def substitute(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        return VAR_RE.sub(lambda m: values.get(m.group(1), ""), value)
    if isinstance(value, dict):
        return {k: substitute(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, values) for v in value]
    return value


def parse_var_args(pairs: list[str], vars_file: Path | None) -> dict[str, str]:
    values: dict[str, str] = {}
    if vars_file is not None:
        try:
            data = yaml.safe_load(vars_file.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise UsageError(f"cannot read --vars {vars_file}: {exc}".splitlines()[0]) from None
        if not isinstance(data, dict):
            raise UsageError(f"--vars {vars_file}: expected a mapping of names to values")
        values.update({str(k): str(v) for k, v in data.items()})
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"bad --var {mask_url(pair)!r}", "expected --var NAME=VALUE")
        values[name] = value
    return values


def masked(values: dict[str, str], playbook: Playbook) -> dict[str, str]:
    """Variables for display: secret ones hidden, passwords in URLs masked."""
    return {k: ("***" if playbook.vars.get(k, VarSpec(k)).secret and v else mask_url(v))
            for k, v in values.items()}
