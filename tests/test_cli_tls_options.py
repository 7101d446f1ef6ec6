"""The eight TLS options, declared once (:func:`migrate.cli.tls.options`): every command that
reaches servers has them in its --help, and a command gets them as one :class:`Sides`."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from migrate.cli import tls
from migrate.endpoint import TlsSettings
from tests.helpers import run_cli

OPTIONS = [f"--{side}-tls-{what}" for side in ("source", "target")
           for what in ("ca", "cert", "key", "insecure")]


@pytest.mark.parametrize("command", ["sync", "verify", "copy", "preflight", "cutover",
                                     "rollback"])
def test_every_command_that_reaches_servers_has_the_options(command: str) -> None:
    result = run_cli(command, "--help")
    assert result.code == 0, result.output
    assert tls.PANEL in result.stdout
    assert all(option in result.stdout for option in OPTIONS), result.stdout


def test_a_command_gets_the_options_as_one_pair(tmp_path: Path) -> None:
    seen: list[tuple[str, tls.Sides]] = []
    app = typer.Typer()

    @app.command()
    @tls.options
    def probe(name: str, tls_sides: tls.Sides = tls.NONE) -> None:
        seen.append((name, tls_sides))

    runner = CliRunner()
    result = runner.invoke(app, ["x", "--source-tls-ca", "ca.pem", "--source-tls-cert",
                                 "c.pem", "--target-tls-insecure"])
    assert result.exit_code == 0, result.output
    assert seen == [("x", tls.Sides(TlsSettings(ca="ca.pem", cert="c.pem"),
                                    TlsSettings(insecure=True)))]
    assert runner.invoke(app, ["y"]).exit_code == 0
    assert seen[-1] == ("y", tls.NONE)
    with pytest.raises(TypeError):
        tls.options(lambda name: None)


def test_options_for_a_plain_url_are_refused(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not used")
    result = run_cli("verify", "--source", "redis://127.0.0.1:1", "--target",
                     "redis://127.0.0.1:2", "--target-tls-ca", str(ca))
    assert result.code == 2, result.output
    assert "--target-tls-* options are given but redis://127.0.0.1:2 is not a TLS URL" in \
        result.stderr.strip().splitlines()[-1]
