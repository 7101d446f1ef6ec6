"""The lab's Debian mirror comes from the machine's apt sources (or KVMIGRATE_DEBIAN_MIRROR),
never from a host written in kvmigrate."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from migrate.errors import LabError
from migrate.lab import mirror

REPO = Path(__file__).resolve().parents[2]


def _etc(tmp_path: Path, files: dict[str, str]) -> Path:
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    for name, text in files.items():
        (etc / name).write_text(text)
    return etc


def test_deb822_sources_skip_security_and_other_archives(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(mirror.ENV, raising=False)
    etc = _etc(tmp_path, {
        "sources.list.d/a-nodesource.sources":
            "Types: deb\nURIs: https://node.example/node_20.x\nSuites: nodistro\n"
            "Components: main\n",
        "sources.list.d/debian.sources":
            "Types: deb\nURIs: http://mirror.example/debian-security\n"
            "Suites: bookworm-security\nComponents: main\n\n"
            "Types: deb deb-src\n# a comment\nURIs: http://mirror.example/debian/\n"
            "Suites: bookworm bookworm-updates\nComponents: main\n",
    })
    assert mirror.find_mirror(etc) == "http://mirror.example/debian"


def test_one_line_sources_with_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(mirror.ENV, raising=False)
    etc = _etc(tmp_path, {"sources.list":
                          "# deb http://old.example/debian buster main\n"
                          "deb [arch=amd64 signed-by=/k.gpg] http://proxy.local:3142/debian "
                          "trixie main contrib\n"})
    assert mirror.find_mirror(etc) == "http://proxy.local:3142/debian"


def test_the_environment_wins_and_nothing_found_is_one_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    etc = _etc(tmp_path, {"sources.list": "deb http://a.example/debian sid main\n"})
    monkeypatch.setenv(mirror.ENV, "http://b.example/debian/")
    assert mirror.find_mirror(etc) == "http://b.example/debian"
    monkeypatch.delenv(mirror.ENV)
    empty = _etc(tmp_path / "x", {})
    with pytest.raises(LabError) as info:
        mirror.find_mirror(empty)
    assert mirror.ENV in (info.value.hint or "")


def test_this_machine_has_a_mirror_and_the_code_names_no_archive_host() -> None:
    assert mirror.find_mirror().startswith(("http", "file:"))
    found = subprocess.run(["git", "grep", "-n", "-i", "-e", "deb.debian.org", "-e",
                            "ftp.debian.org", "--", "migrate", "docs", "scripts", "checks",
                            "README.md", "Makefile"],
                           cwd=REPO, capture_output=True, text=True)
    assert found.stdout == ""
