"""Which Debian mirror the lab downloads server packages from: the one this machine's own apt
sources already name (a local mirror or an apt proxy keeps working), or the one named by
``KVMIGRATE_DEBIAN_MIRROR``. No archive host is written in kvmigrate itself."""

from __future__ import annotations

import os
from pathlib import Path

from migrate.errors import LabError

ENV = "KVMIGRATE_DEBIAN_MIRROR"
APT_ETC = Path("/etc/apt")
# Debian's release code names: a sources entry for one of these suites is the main archive
# (``-updates`` and ``-backports`` come from the same mirror; ``-security`` does not).
CODENAMES = ("buster", "bullseye", "bookworm", "trixie", "forky", "duke", "sid", "unstable",
             "stable", "testing", "oldstable")


def _one_line_entries(text: str) -> list[tuple[str, list[str]]]:
    """(uri, suites) of each ``deb`` line of a sources.list file."""
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        words = line.split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if len(words) >= 2:
            out.append((words[0], [words[1]]))
    return out


def _deb822_entries(text: str) -> list[tuple[str, list[str]]]:
    """(uri, suites) of each stanza of a ``.sources`` file whose Types include deb."""
    out: list[tuple[str, list[str]]] = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for raw in stanza.splitlines():
            if raw.startswith("#") or not raw.strip():
                continue
            if raw[0] in " \t" and key:
                fields[key] += " " + raw.strip()
                continue
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        if "deb" not in fields.get("types", "").split():
            continue
        suites = fields.get("suites", "").split()
        out.extend((uri, suites) for uri in fields.get("uris", "").split())
    return out


def _is_main_archive(suites: list[str]) -> bool:
    return any(s.split("-")[0] in CODENAMES and not s.endswith("-security") for s in suites)


def find_mirror(apt_etc: Path = APT_ETC) -> str:
    """The Debian mirror URL to use (without a trailing slash)."""
    if override := os.environ.get(ENV, "").strip():
        return override.rstrip("/")
    files: list[tuple[Path, bool]] = []
    main = apt_etc / "sources.list"
    if main.is_file():
        files.append((main, False))
    parts = apt_etc / "sources.list.d"
    if parts.is_dir():
        for f in sorted(parts.iterdir()):
            if f.suffix in (".list", ".sources") and f.is_file():
                files.append((f, f.suffix == ".sources"))
    for path, deb822 in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        entries = _deb822_entries(text) if deb822 else _one_line_entries(text)
        for uri, suites in entries:
            if _is_main_archive(suites) and uri.startswith(("http://", "https://", "file:")):
                return uri.rstrip("/")
    raise LabError(f"no Debian mirror found in {main} or {parts}",
                   f"set {ENV} to the URL of a Debian mirror (or apt proxy)")
