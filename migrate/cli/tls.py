"""The TLS options of commands that reach servers: ``--source-tls-ca``, ``--source-tls-cert``,
``--source-tls-key``, ``--source-tls-insecure`` and the same for ``--target`` (redis-cli's
``--cacert``, ``--cert``, ``--key``, ``--insecure``, one set per side). They apply to a
``rediss://`` URL; given for a ``redis://`` one they are refused.

They are declared once: :func:`options` adds the eight to a command's signature (where Typer
reads a command's options) and hands the command a :class:`Sides` in their place.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from migrate.endpoint import NO_TLS, Endpoint, TlsSettings

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


@dataclass(frozen=True)
class Sides:
    """The ``--source-tls-*`` and ``--target-tls-*`` options of one command line."""

    source: TlsSettings = NO_TLS
    target: TlsSettings = NO_TLS

    def of(self, side: str) -> TlsSettings:
        return self.source if side == "source" else self.target

    def apply(self, endpoint: Endpoint, side: str,
              recorded: TlsSettings | None = None) -> Endpoint:
        """``endpoint`` with the ``--{side}-tls-*`` options (checked: files readable, URL
        TLS); when none is given, with ``recorded`` (a ledger's) if the URL is TLS."""
        given = self.of(side)
        if not given.given() and recorded is not None and endpoint.tls:
            given = recorded
        return endpoint.with_tls(given, f"--{side}-tls")


NONE = Sides()

# the eight options, in --help order: name, type, default
_OPTIONS: list[tuple[str, Any, Any]] = [
    ("source_tls_ca", SourceCa, None), ("source_tls_cert", SourceCert, None),
    ("source_tls_key", SourceKey, None), ("source_tls_insecure", SourceInsecure, False),
    ("target_tls_ca", TargetCa, None), ("target_tls_cert", TargetCert, None),
    ("target_tls_key", TargetKey, None), ("target_tls_insecure", TargetInsecure, False)]
PARAMETER = "tls_sides"  # the command's parameter that receives the options as Sides


def options(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` the eight TLS options: its ``tls_sides: Sides`` parameter is replaced,
    in the signature Typer reads, by ``--source-tls-ca`` ... ``--target-tls-insecure`` (after
    its other options), and the command is called with them as one :class:`Sides`."""
    signature = inspect.signature(command, eval_str=True)
    if PARAMETER not in signature.parameters:
        raise TypeError(f"{command.__name__} has no {PARAMETER} parameter")
    kept = [p for p in signature.parameters.values() if p.name != PARAMETER]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind,
                               default=default) for name, kind, default in _OPTIONS]

    @functools.wraps(command)
    def with_options(*args: Any, **kwargs: Any) -> None:
        values = [kwargs.pop(name) for name, _, _ in _OPTIONS]
        sides = Sides(settings(*values[:4]), settings(*values[4:]))
        command(*args, **kwargs, **{PARAMETER: sides})

    with_options.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*kept, *added])
    with_options.__annotations__ = {**{p.name: p.annotation for p in kept},
                                    **{name: kind for name, kind, _ in _OPTIONS},
                                    "return": signature.return_annotation}
    return with_options
