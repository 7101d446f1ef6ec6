"""redis.conf -> valkey.conf: the user's file, line by line, in Valkey's words.

Comments, blank lines and order are kept. Included files are inlined between marker comments
(the output is one self-contained file). A directive Valkey knows is kept as written; a
renamed one is rewritten to Valkey's name; one Valkey refuses is commented out with a finding
(Valkey, like Redis, refuses to start on an unknown directive). Migration settings are added
at the end as commented suggestions.
"""

from __future__ import annotations

from migrate.compat.versions import validity
from migrate.convert import valkey_rules
from migrate.convert.document import ConfigDocument, Line
from migrate.convert.effective import resolve
from migrate.convert.grammar import quote, split_args
from migrate.convert.redis_rules import known_to_redis
from migrate.convert.result import Conversion, DirectiveFate, Fate, finding
from migrate.model import Severity
from migrate.serverinfo import parse_version


def convert(doc: ConfigDocument, target_version: str | None = None) -> Conversion:
    version = valkey_rules.dataset_version(target_version)
    shown_version = target_version or version
    vtuple = parse_version(version)[:2]
    result = Conversion(source=doc.origin, target="valkey", target_version=shown_version,
                        valid_for=validity("valkey", target_version))
    out = [f"# Converted from {doc.origin} by kvmigrate convert-config,",
           f"# {result.valid_for}.",
           "# Each change is marked with a '# kvmigrate:' comment.", ""]
    overridden = _mark_overridden(doc, result)
    for line in doc.lines:
        if line.kind in ("comment", "blank"):
            out.append(line.text)
        elif line.kind == "include-start":
            assert line.directive is not None  # an include line carries its directive
            out.append(f"# kvmigrate: inlined 'include' of {line.directive.args[0]} "
                       f"({line.file}:{line.line}) below")
        elif line.kind == "include-end":
            assert line.directive is not None
            out.append(f"# kvmigrate: end of {line.directive.args[0]}")
        else:
            out.extend(_directive(line, version, vtuple, result))
    for fate in result.fates:
        if (fate.directive.file, fate.directive.line) in overridden and fate.fate in (
                Fate.MAPPED, Fate.RENAMED, Fate.CHANGED):
            fate.note = f"written as {fate.target}, but a later line wins"
            fate.fate = Fate.OVERRIDDEN
    out.extend(_suggestions(vtuple, version))
    result.text = "\n".join(out) + "\n"
    return result


def _mark_overridden(doc: ConfigDocument, result: Conversion) -> set[tuple[str, int]]:
    lines = set()
    for setting in resolve(doc).values():
        for d in setting.overridden:
            lines.add((d.file, d.line))
            result.findings.append(finding(
                "config.overridden", Severity.INFO,
                f"{d.name} is set again at {setting.last.where}; that line wins", d,
                detail="Redis and Valkey keep the last value of a repeated directive.",
                source="redis src/config.c (last processed line wins)"))
    return lines


def _text(line: Line, name: str | None = None) -> str:
    """The line as written, or with its first word replaced by ``name``."""
    d = line.directive
    assert d is not None
    if not line.text:
        return " ".join([name or d.name, *(quote(a) for a in d.args)])
    if name is None:
        return line.text
    stripped = line.text.lstrip()
    indent = line.text[:len(line.text) - len(stripped)]
    first = stripped.split(None, 1)
    if first and '"' not in first[0] and "'" not in first[0]:
        rest = stripped[len(first[0]):]
        return f"{indent}{name}{rest}"
    return indent + " ".join([name, *(quote(a) for a in split_args(stripped)[1:])])


def _directive(line: Line, version: str, vtuple: tuple[int, ...],
               result: Conversion) -> list[str]:
    d = line.directive
    assert d is not None
    rename = valkey_rules.RENAMES.get(d.name)
    if rename and vtuple >= rename.since:
        result.fates.append(DirectiveFate(d, Fate.RENAMED, rename.new,
                                          f"Valkey's name for {d.name}"))
        return [f"# kvmigrate: {d.name} is {rename.new} in Valkey", _text(line, rename.new)]
    if d.name == "client-output-buffer-limit" and any(a.lower() == "slave" for a in d.args):
        args = ["replica" if a.lower() == "slave" else a for a in d.args]
        result.fates.append(DirectiveFate(d, Fate.CHANGED, d.name,
                                          "class 'slave' written as 'replica'"))
        return ["# kvmigrate: client class 'slave' is 'replica' in Valkey",
                " ".join([d.name, *(quote(a) for a in args)])]
    if d.name == "sentinel":
        result.fates.append(DirectiveFate(d, Fate.DROPPED, "", "Sentinel configuration"))
        result.findings.append(finding(
            "valkey.sentinel", Severity.WARNING, "sentinel directive in a server config", d,
            remediation="convert sentinel.conf separately (valkey-sentinel reads the same "
                        "directives)"))
        return [f"# kvmigrate: dropped (Sentinel directive): {_commented(line)}"]
    how = valkey_rules.knows(version, d.name)
    if how in ("listed", "hidden"):
        result.fates.append(DirectiveFate(d, Fate.MAPPED, d.name))
        if d.name == "loadmodule":
            result.findings.append(finding(
                "valkey.module", Severity.WARNING,
                f"loadmodule {d.args[0]}: a module built for Redis", d,
                detail="Valkey has its own modules (valkey-json, valkey-bloom, valkey-search); "
                       "vector sets and time series have no Valkey equivalent, and "
                       "valkey-bloom is not RDB-compatible with RedisBloom.",
                remediation="install the Valkey module and point loadmodule at it, or check "
                            "that this module supports Valkey",
                source="docs/compatibility.md 'Modules and their key types'"))
        if d.name == "dir":
            result.findings.append(finding(
                "valkey.dir-must-exist", Severity.INFO,
                f"dir {d.args[0]}: must exist on the Valkey host", d,
                detail="Valkey changes to this directory while reading the file and refuses "
                       "to start if it is missing.",
                source="seen here: Valkey 8.0.1 'FATAL CONFIG FILE ERROR ... dir ... No such "
                       "file or directory'"))
        return [_text(line)]
    if how == "ignored":
        result.fates.append(DirectiveFate(d, Fate.DROPPED, "",
                                          f"Valkey {version} accepts and ignores it"))
        result.findings.append(finding(
            "valkey.ignored", Severity.INFO, f"{d.name} is ignored by Valkey {version}", d,
            detail="Valkey accepts it for compatibility and does nothing with it.",
            source="seen here: lab server started with it; CONFIG GET answers nothing"))
        return [f"# kvmigrate: dropped (ignored by Valkey {version}): {_commented(line)}"]
    why = ("a Redis directive Valkey does not have" if known_to_redis(d.name)
           else "unknown to Redis 7.0/8.0 and to Valkey (a module's setting, or a typo?)")
    result.fates.append(DirectiveFate(d, Fate.DROPPED, "", why))
    severity = Severity.WARNING
    result.findings.append(finding(
        "valkey.unknown-directive", severity, f"{d.name}: {why}; dropped", d,
        detail=f"Valkey {version} refuses to start on a directive it does not know.",
        remediation="remove it, or find Valkey's equivalent (a module setting needs the "
                    "module loaded first)",
        source=f"known directives: CONFIG GET * on Valkey {version} (lab)"))
    return [f"# kvmigrate: dropped ({why}): {_commented(line)}"]


def _commented(line: Line) -> str:
    d = line.directive
    assert d is not None
    return line.text.strip() if line.text else " ".join([d.name, *(quote(a) for a in d.args)])


def _suggestions(vtuple: tuple[int, ...], version: str) -> list[str]:
    lines = ["", "# kvmigrate: settings for the migration itself (uncomment while migrating):"]
    any_fit = False
    for s in valkey_rules.SUGGESTIONS:
        if vtuple >= s.since:
            any_fit = True
            lines.append(f"# {s.why}")
            lines.append(f"# {s.directive} {s.value}")
    if not any_fit:
        lines.append(f"# (none for Valkey {version}: rdb-version-check and import-mode "
                     "arrive in 8.1)")
    return lines

