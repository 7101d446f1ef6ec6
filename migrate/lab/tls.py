"""Certificates for TLS lab servers, made with the ``openssl`` command: a private CA, a
server certificate for 127.0.0.1/localhost and a client certificate, all signed by it.

A lab server started with :class:`ServerTls` listens on its TLS port only (``--port 0``)
unless told to listen on a plain port too;
its :attr:`~migrate.lab.server.ServerProcess.endpoint` is ``rediss://`` with the CA and the
client certificate, so kvmigrate and the tests reach it like any other server.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from migrate.errors import LabError

DAYS = "7"
KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class Pki:
    """A CA and the certificates it signed (PEM files)."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


@dataclass(frozen=True)
class ServerTls:
    """How a lab server does TLS: its certificates, and whether clients must show one."""

    pki: Pki
    auth_clients: bool = False  # tls-auth-clients yes: a client certificate is required
    replication: bool = False  # tls-replication yes: it replicates from TLS primaries
    plain_port: bool = False  # it also listens on a plain port (a free one, not its .port)

    def server_args(self, port: int, plain: int = 0) -> list[str]:
        """``port``: its TLS port; ``plain``: its plain port (0: none)."""
        args = ["--port", str(plain), "--tls-port", str(port),
                "--tls-cert-file", str(self.pki.server_cert),
                "--tls-key-file", str(self.pki.server_key),
                "--tls-ca-cert-file", str(self.pki.ca_cert),
                "--tls-auth-clients", "yes" if self.auth_clients else "no"]
        if self.replication:
            args += ["--tls-replication", "yes"]
        return args


def replica_args(pki: Pki) -> list[str]:
    """A server on a plain port that replicates from TLS primaries of ``pki``'s CA, showing
    its certificate as the client certificate (native mode from a TLS source)."""
    return ["--tls-replication", "yes", "--tls-cert-file", str(pki.client_cert),
            "--tls-key-file", str(pki.client_key), "--tls-ca-cert-file", str(pki.ca_cert)]


def _openssl(*args: str, cwd: Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise LabError("the openssl command is not installed", "install openssl")
    proc = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise LabError(f"openssl {args[0]} failed: {reason}")


def make_pki(directory: Path, name: str = "kvmigrate lab") -> Pki:
    """Write a new CA, a server certificate (127.0.0.1, localhost) and a client certificate
    to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    d = directory
    _openssl("req", "-x509", "-new", *KEY, "-keyout", "ca.key", "-out", "ca.crt",
             "-days", DAYS, "-subj", f"/CN={name} CA", cwd=d)
    # a server shows its certificate to its own primary too (tls-replication): both usages
    for role, usage, alt in (("server", "serverAuth,clientAuth", "IP:127.0.0.1,DNS:localhost"),
                             ("client", "clientAuth", "DNS:kvmigrate")):
        (d / f"{role}.ext").write_text(f"subjectAltName={alt}\nextendedKeyUsage={usage}\n"
                                       "basicConstraints=CA:FALSE\n")
        _openssl("req", "-new", *KEY, "-keyout", f"{role}.key", "-out", f"{role}.csr",
                 "-subj", f"/CN={name} {role}", cwd=d)
        _openssl("x509", "-req", "-in", f"{role}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{role}.crt", "-days", DAYS,
                 "-extfile", f"{role}.ext", cwd=d)
    return Pki(d, d / "ca.crt", d / "ca.key", d / "server.crt", d / "server.key",
               d / "client.crt", d / "client.key")
