"""The TLS options of commands that reach servers: ``--source-tls-ca``, ``--source-tls-cert``,
``--source-tls-key``, ``--source-tls-insecure`` and the same for ``--target`` (redis-cli's
``--cacert``, ``--cert``, ``--key``, ``--insecure``, one set per side). They apply to a
``rediss://`` URL; given for a ``redis://`` one they are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from migrate.endpoint import Endpoint, TlsSettings

PANEL = "TLS (for rediss:// URLs)"


def _ca(side: str) -> object:
    return typer.Option(f"--{side}-tls-ca", metavar="FILE", rich_help_panel=PANEL,
                        help=f"CA certificate(s) (PEM) that sign the {side}'s certificate.")


def _cert(side: str) -> object:
    return typer.Option(f"--{side}-tls-cert", metavar="FILE", rich_help_panel=PANEL,
                        help=f"Client certificate (PEM) for a {side} that requires one.")


def _key(side: str) -> object:
    return typer.Option(f"--{side}-tls-key", metavar="FILE", rich_help_panel=PANEL,
                        help=f"Key of --{side}-tls-cert (when not in that file).")


def _insecure(side: str) -> object:
    return typer.Option(f"--{side}-tls-insecure", rich_help_panel=PANEL,
                        help=f"Do not verify the {side}'s certificate (testing only).")


SourceCa = Annotated[Path | None, _ca("source")]
SourceCert = Annotated[Path | None, _cert("source")]
SourceKey = Annotated[Path | None, _key("source")]
SourceInsecure = Annotated[bool, _insecure("source")]
TargetCa = Annotated[Path | None, _ca("target")]
TargetCert = Annotated[Path | None, _cert("target")]
TargetKey = Annotated[Path | None, _key("target")]
TargetInsecure = Annotated[bool, _insecure("target")]


def settings(ca: Path | None, cert: Path | None, key: Path | None,
             insecure: bool) -> TlsSettings:
    return TlsSettings(ca=str(ca) if ca else None, cert=str(cert) if cert else None,
                       key=str(key) if key else None, insecure=insecure)


def with_tls(endpoint: Endpoint, side: str, ca: Path | None, cert: Path | None,
             key: Path | None, insecure: bool) -> Endpoint:
    """``endpoint`` with the ``--{side}-tls-*`` options (checked: files readable, URL TLS)."""
    return endpoint.with_tls(settings(ca, cert, key, insecure), f"--{side}-tls")
