"""Reading redis.conf files: includes, line endings, comments, effective values (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrate.convert.document import ConfigError, parse_file, parse_text
from migrate.convert.effective import resolve


def test_absolute_include_and_crlf_lines(tmp_path: Path) -> None:
    extra = tmp_path / "abs" / "extra.conf"
    extra.parent.mkdir()
    extra.write_bytes(b"maxclients 42\r\n")
    main = tmp_path / "redis.conf"
    main.write_bytes(f"port 7000\r\n   # indented comment\r\ninclude {extra}\r\n".encode())
    doc = parse_file(main, include_base=tmp_path / "elsewhere")
    kinds = [line.kind for line in doc.lines]
    assert kinds == ["directive", "comment", "include-start", "directive", "include-end"]
    settings = resolve(doc)
    assert settings["maxclients"].args == ["42"]
    assert settings["maxclients"].last.file == str(extra)
    assert settings["port"].args == ["7000"]


def test_relative_include_is_relative_to_the_base_not_the_including_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "main.conf").write_text("include other.conf\n")
    (tmp_path / "other.conf").write_text("timeout 9\n")
    doc = parse_file(tmp_path / "sub" / "main.conf", include_base=tmp_path)
    assert resolve(doc)["timeout"].args == ["9"]
    with pytest.raises(ConfigError, match="no such included file"):
        parse_file(tmp_path / "sub" / "main.conf", include_base=tmp_path / "sub")


def test_longer_include_loop_names_the_chain(tmp_path: Path) -> None:
    (tmp_path / "a.conf").write_text("include b.conf\n")
    (tmp_path / "b.conf").write_text("port 1\ninclude c.conf\n")
    (tmp_path / "c.conf").write_text("include a.conf\n")
    with pytest.raises(ConfigError) as caught:
        parse_file(tmp_path / "a.conf", include_base=tmp_path)
    assert caught.value.message.startswith("c.conf:1: include loop: ")
    assert caught.value.message.count(" -> ") == 3


def test_the_same_file_included_twice_is_not_a_loop(tmp_path: Path) -> None:
    (tmp_path / "common.conf").write_text("hz 20\n")
    (tmp_path / "a.conf").write_text("include common.conf\ninclude common.conf\n")
    doc = parse_file(tmp_path / "a.conf", include_base=tmp_path)
    assert [d.name for d in doc.directives()] == ["hz", "hz"]


def test_directive_names_are_case_insensitive() -> None:
    doc = parse_text("MAXMEMORY 1gb\nMaxMemory-Policy allkeys-lru\n")
    assert [d.name for d in doc.directives()] == ["maxmemory", "maxmemory-policy"]


def test_not_utf8_is_refused_with_its_line(tmp_path: Path) -> None:
    conf = tmp_path / "redis.conf"
    conf.write_bytes(b"port 1\nrequirepass \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"redis.conf:2: not UTF-8"):
        parse_file(conf)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        parse_file(tmp_path)
