"""Lua scripts to analyse: files and folders from ``--scripts``, and the source's functions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from migrate.errors import UsageError
from migrate.inspect.facts import LuaFunctionLibrary

if TYPE_CHECKING:
    from migrate.inspect.lua import ScriptAnalysis


def script_files(paths: list[Path]) -> list[Path]:
    """Every ``.lua`` file under the given paths; a missing or unreadable path is an error."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.lua") if p.is_file())
            if not found:
                raise UsageError(f"no .lua files under {path}",
                                 "give --scripts a .lua file or a folder holding some")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"script path not found: {path}",
                             "give --scripts an existing .lua file or folder")
    return files


def read_scripts(paths: list[Path]) -> list[tuple[str, str]]:
    """(name, code) for each script; read before any server is contacted."""
    scripts = []
    for file in script_files(paths):
        try:
            scripts.append((str(file), file.read_text(encoding="utf-8", errors="replace")))
        except OSError as exc:
            raise UsageError(f"cannot read script {file}: {exc.strerror}") from None
    return scripts


def analyse_all(scripts: list[tuple[str, str]],
                libraries: list[LuaFunctionLibrary]) -> list[ScriptAnalysis]:
    from migrate.inspect.lua import analyse  # luaparser: only when there are scripts

    results = [analyse(code, name) for name, code in scripts]
    results += [analyse(lib.code, f"function library {lib.name}", kind="function")
                for lib in libraries if lib.engine.upper() == "LUA" and lib.code]
    return results
