"""``copy --from-server``, ``verify`` and ``preflight`` over TLS (a private CA, client
certificates required) on Redis 7.0, Valkey 8.0 and Valkey 9; a wrong CA refused with exit 3
and one line; and every command that reaches a server failing within its deadline (exit 3)
when the server accepts the connection and never answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.lab.tls import Pki, ServerTls
from migrate.serverinfo import identify
from tests.helpers import run_cli, run_cli_many
from tests.sync.test_tls import tls_args

SPECS = ["redis-7.0", "valkey-8.0", "valkey-9"]
DEADLINE_S = 30  # the connect deadline is 10 s; the rest is the interpreter starting


def error_line(stderr: str) -> str:
    """The one ``kvmigrate: error:`` line, which must be the last line of ``stderr``."""
    lines = stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("kvmigrate: error:")]
    assert errors == lines[-1:], stderr
    return errors[0]


@pytest.mark.parametrize("spec", SPECS)
def test_copy_verify_and_preflight_over_tls(lab: Fleet, pki: Pki, spec: str) -> None:
    source = lab.start(spec, password="pw-copy-src", tls=ServerTls(pki, auth_clients=True),
                       extra_args=["--repl-diskless-sync", "yes",
                                   "--repl-diskless-sync-delay", "0"])
    target = lab.start("valkey-9", tls=ServerTls(pki, auth_clients=True))
    seed(source.endpoint, keys=700, seed_value=9)
    copied = run_cli("copy", "--from-server", source.url, *tls_args("source", source),
                     "--target", target.url, *tls_args("target", target), "--format", "json")
    assert copied.code == 0, copied.output
    assert json.loads(copied.stdout)["keys"] == 700
    assert "pw-copy-src" not in copied.output
    checked = run_cli("verify", "--source", source.url, *tls_args("source", source),
                      "--target", target.url, *tls_args("target", target), "--full",
                      "--format", "json")
    assert checked.code == 0, checked.output
    assert json.loads(checked.stdout)["keys_checked"] >= 700
    target.client().set("only-on-target", "x")  # verify over TLS can also fail
    differs = run_cli("verify", "--source", source.url, *tls_args("source", source),
                      "--target", target.url, *tls_args("target", target), "--full")
    assert differs.code == 1, differs.output
    report = run_cli("preflight", "--source", source.url, *tls_args("source", source),
                     "--to", "valkey", "--target", target.url, *tls_args("target", target),
                     "--format", "json")
    assert report.code in (0, 1), report.output
    facts = json.loads(report.stdout)
    assert facts["source"]["version"] == identify(source.client().info("server")).version_text
    assert facts["source"]["keys"] == 700


def test_a_wrong_ca_is_refused_with_exit_3_and_one_line(lab: Fleet, pki: Pki,
                                                        other_pki: Pki) -> None:
    source = lab.start("valkey-8.0", tls=ServerTls(pki))
    target = lab.start("valkey-9")
    wrong = ["--source-tls-ca", str(other_pki.ca_cert)]
    for args in (["copy", "--from-server", source.url, *wrong, "--target", target.url],
                 ["verify", "--source", source.url, *wrong, "--target", target.url],
                 ["preflight", "--source", source.url, *wrong, "--to", "valkey"],
                 ["sync", "--source", source.url, *wrong, "--target", target.url]):
        result = run_cli(*args)
        assert result.code == 3, (args[0], result.output)
        line = error_line(result.stderr)
        assert "certificate verify failed" in line
        assert "--source-tls-ca" in line  # what to do about it


def test_tls_options_on_a_plain_url_are_a_usage_error(lab: Fleet, pki: Pki) -> None:
    server = lab.start("valkey-9")
    result = run_cli("verify", "--source", server.url, "--source-tls-ca", str(pki.ca_cert),
                     "--target", server.url)
    assert result.code == 2
    assert "--source-tls-* options are given but" in result.stderr
    missing = run_cli("preflight", "--source", server.url.replace("redis:", "rediss:"),
                      "--source-tls-cert", "/nonexistent.pem", "--to", "valkey")
    assert missing.code == 2 and "no such file" in missing.stderr


@pytest.mark.parametrize("scheme", ["redis", "rediss"])
def test_a_server_that_never_answers_fails_each_command_within_its_deadline(
        lab: Fleet, silent_server: tuple[str, int], scheme: str, tmp_path: Path) -> None:
    host, port = silent_server
    silent = f"{scheme}://{host}:{port}"
    target = lab.start("valkey-9")
    commands = [["sync", "--source", silent, "--target", target.url,
                 "--state", str(tmp_path / "s")],
                ["verify", "--source", silent, "--target", target.url],
                ["preflight", "--source", silent, "--to", "valkey"],
                ["copy", "--from-server", silent, "--target", target.url]]
    # all at once: each waits out its own deadline on the silent source
    for args, (result, elapsed) in zip(commands, run_cli_many(commands, timeout=120),
                                       strict=True):
        assert result.code == 3, (args[0], result.output)
        assert elapsed < DEADLINE_S, (args[0], elapsed)
        assert f"{host}:{port}" in error_line(result.stderr)
