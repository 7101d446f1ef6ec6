"""redis.conf grammar: sdssplitargs quoting, memtoull units, Redis's argument rules (pure logic)."""

from __future__ import annotations

import pytest

from migrate.convert.grammar import GrammarError, parse_size, quote, split_args
from migrate.convert.redis_rules import check, mask_args, normalize_args


@pytest.mark.parametrize(("line", "expected"), [
    ("maxmemory 2gb", ["maxmemory", "2gb"]),
    ("  save   900 1  ", ["save", "900", "1"]),
    ('requirepass "a b"', ["requirepass", "a b"]),
    (r'requirepass "tab\there"', ["requirepass", "tab\there"]),
    (r'requirepass "q\"uote"', ["requirepass", 'q"uote']),
    (r'requirepass "\x41\x42C"', ["requirepass", "ABC"]),
    (r'requirepass "\xzz"', ["requirepass", "xzz"]),  # not hex: \x is just x
    (r"requirepass 'single \"kept\" \n'", ["requirepass", 'single \\"kept\\" \\n']),
    (r"requirepass 'it\'s'", ["requirepass", "it's"]),
    ('notify-keyspace-events ""', ["notify-keyspace-events", ""]),
    ("foo\"bar baz\"", ['foobar baz']),  # a quote inside a word opens a quoted part
    ("maxmemory 2gb # comment", ["maxmemory", "2gb", "#", "comment"]),
])
def test_split_args_follows_sdssplitargs(line: str, expected: list[str]) -> None:
    assert split_args(line) == expected


@pytest.mark.parametrize("line", ['requirepass "open', "requirepass 'open",
                                  'requirepass "a"b', "requirepass 'a'b"])
def test_split_args_refuses_what_redis_refuses(line: str) -> None:
    with pytest.raises(GrammarError):
        split_args(line)


def test_hex_escape_of_a_non_utf8_byte_survives_quote() -> None:
    [arg] = split_args(r'"\xff\x00ok"')
    assert split_args(quote(arg)) == [arg]


@pytest.mark.parametrize(("value", "expected"), [
    ("0", 0), ("100", 100), ("1b", 1), ("1k", 1000), ("1kb", 1024), ("1K", 1000),
    ("1KB", 1024), ("2m", 2_000_000), ("2mb", 2 * 1024**2), ("1g", 1000**3),
    ("1Gb", 1024**3), ("1gB", 1024**3),
])
def test_units_as_memtoull(value: str, expected: int) -> None:
    assert parse_size(value) == expected


@pytest.mark.parametrize("value", ["2tb", "1.5gb", "gb", "1 gb", "12x"])
def test_unknown_units_are_errors(value: str) -> None:
    with pytest.raises(GrammarError):
        parse_size(value)


def test_multi_arg_directive_splits_one_quoted_argument() -> None:
    assert normalize_args("save", ["900 1 300 10"]) == ["900", "1", "300", "10"]
    assert normalize_args("save", [""]) == [""]
    assert normalize_args("requirepass", ["a b"]) == ["a b"]


@pytest.mark.parametrize(("name", "args", "message"), [
    ("maxmemory", ["1gb", "#", "x"], "takes 1 argument"),
    ("maxmemory", ["1tb"], "unknown unit"),
    ("save", ["900"], "pairs"),
    ("save", ["900", "x"], "not a number"),
    ("client-output-buffer-limit", ["normal", "0", "0"], "groups"),
    ("client-output-buffer-limit", ["vip", "0", "0", "0"], "unknown class"),
    ("rename-command", ["CONFIG"], "takes 2"),
    ("include", [], "takes 1"),
    ("replicaof", ["host"], "host and a port"),
])
def test_check_refuses_what_redis_refuses_at_startup(name: str, args: list[str],
                                                     message: str) -> None:
    with pytest.raises(GrammarError, match=message):
        check(name, args)


def test_check_accepts_valid_lines_and_unknown_directives() -> None:
    check("maxmemory-clients", ["10%"])
    check("client-output-buffer-limit", ["replica", "256mb", "64mb", "60"])
    check("user", ["default", "on", "nopass", "~*", "+@all"])
    check("some-module-setting", ["a", "b", "c"])  # not Redis's: a finding, not an error


def test_secrets_are_masked() -> None:
    assert mask_args("requirepass", ["pw"]) == ["***"]
    assert mask_args("masterauth", ["pw"]) == ["***"]
    assert mask_args("user", ["bob", "on", ">pw", "#" + "a" * 64, "~*"]) == \
        ["bob", "on", ">***", "#***", "~*"]
    assert mask_args("rename-command", ["CONFIG", "secretname"]) == ["CONFIG", "***"]
    assert mask_args("rename-command", ["CONFIG", ""]) == ["CONFIG", ""]
    assert mask_args("maxmemory", ["1gb"]) == ["1gb"]
