"""Start and stop one real server process on 127.0.0.1, in its own directory with its own log."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import redis

from migrate.endpoint import Endpoint, TlsSettings
from migrate.errors import LabError, UsageError
from migrate.lab.dragonfly import dragonfly_args
from migrate.lab.install import Installed
from migrate.lab.tls import ServerTls

HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return True
    return False


@dataclass
class ServerProcess:
    """A running (or stopped) lab server; serialisable so ``lab status`` can find it again."""

    name: str
    spec: str
    flavor: str
    version: str
    port: int
    directory: str
    pid: int = 0
    argv: list[str] = field(default_factory=list)
    password: str | None = None
    # a TLS server (its port is the TLS port): how a client reaches it
    tls_ca: str | None = None
    tls_cert: str | None = None  # the client certificate (and key) it accepts
    tls_key: str | None = None

    @property
    def tls(self) -> bool:
        return self.tls_ca is not None

    @property
    def tls_settings(self) -> TlsSettings:
        return TlsSettings(ca=self.tls_ca, cert=self.tls_cert, key=self.tls_key)

    @property
    def log_path(self) -> Path:
        # Dragonfly logs to stderr (--logtostderr), which the lab keeps in stdout.log
        name = "stdout.log" if self.flavor == "dragonfly" else "server.log"
        return Path(self.directory) / name

    @property
    def endpoint(self) -> Endpoint:
        if self.tls:
            return Endpoint(HOST, self.port, password=self.password, tls=True,
                            tls_settings=self.tls_settings)
        return Endpoint(HOST, self.port, password=self.password)

    @property
    def url(self) -> str:
        """The URL with the password in it (for handing to kvmigrate; never print it)."""
        auth = f":{self.password}@" if self.password else ""
        return f"{'rediss' if self.tls else 'redis'}://{auth}{HOST}:{self.port}"

    def client(self, db: int = 0, decode_responses: bool = False) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, db=db, password=self.password,
                           decode_responses=decode_responses, socket_timeout=60,
                           **self.endpoint.redis_tls_kwargs())

    def alive(self) -> bool:
        if self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # A zombie child of ours counts as gone.
        with contextlib.suppress(ChildProcessError):
            done, _ = os.waitpid(self.pid, os.WNOHANG)
            if done == self.pid:
                return False
        # The pid may have been reused by another process since the server stopped.
        try:
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes()
        except OSError:
            return True  # no /proc: trust the signal check
        return str(self.port).encode() in cmdline.split(b"\0")

    def save(self) -> None:
        """Record the server (mode 0600: it may hold the lab password)."""
        path = Path(self.directory) / "instance.json"
        path.touch(mode=0o600)
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, directory: Path) -> ServerProcess:
        return cls(**json.loads((directory / "instance.json").read_text()))

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL); a stopped server is left as it is."""
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        while self.alive():
            time.sleep(0.05)


def start_server(installed: Installed, *, name: str, spec: str, flavor: str, directory: Path,
                 port: int | None = None, extra_args: list[str] | None = None,
                 password: str | None = None, config_file: Path | None = None,
                 lab_defaults: bool = True, tls: ServerTls | None = None) -> ServerProcess:
    """Start a server and wait until it answers PING; raise :class:`LabError` if it cannot.

    With ``lab_defaults=False`` only port, bind, dir, logfile and daemonize are forced, so a
    config file's own ``save``, ``appendonly`` ... take effect. With ``tls`` the port is its
    TLS port (and it has no plain one).
    """
    if port is None:
        port = free_port()
    elif port_in_use(port):
        raise UsageError(f"port {port} on {HOST} is in use", "choose another with --port")
    directory.mkdir(parents=True, exist_ok=True)
    proc = ServerProcess(name=name, spec=spec, flavor=flavor, version=installed.version,
                         port=port, directory=str(directory), password=password)
    if tls is not None:
        if flavor == "dragonfly":
            raise LabError("the lab starts Redis and Valkey servers with TLS, not Dragonfly")
        proc.tls_ca, proc.tls_cert, proc.tls_key = (str(tls.pki.ca_cert),
                                                    str(tls.pki.client_cert),
                                                    str(tls.pki.client_key))
    if flavor == "dragonfly":
        args = [*installed.argv("dragonfly"),
                *dragonfly_args(port=port, host=HOST, directory=directory, password=password,
                                flagfile=config_file, lab_defaults=lab_defaults)]
    else:
        args = [*installed.argv(f"{flavor}-server")]
        if config_file is not None:
            args.append(str(config_file))
        args += ["--port", str(port), "--bind", HOST, "--dir", str(directory),
                 "--logfile", str(proc.log_path), "--daemonize", "no"]
        if lab_defaults:
            args += ["--save", "", "--appendonly", "no", "--enable-debug-command", "local"]
        if password:
            args += ["--requirepass", password]
        if tls is not None:
            args += tls.server_args(port, free_port() if tls.plain_port else 0)
    args += extra_args or []
    proc.argv = args
    with open(directory / "stdout.log", "ab") as out:
        popen = subprocess.Popen(args, cwd=directory, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
    proc.pid = popen.pid
    _wait_ready(proc, popen)
    proc.save()
    return proc


def _wait_ready(proc: ServerProcess, popen: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    client = proc.client()
    while True:
        if popen.poll() is not None:
            detail = proc.log_tail() or (Path(proc.directory) / "stdout.log").read_text(
                errors="replace").strip().replace("\n", " | ")[-400:]
            # a config error is printed before the log file opens: point at what exists
            log = proc.log_path if proc.log_path.exists() \
                else Path(proc.directory) / "stdout.log"
            raise LabError(f"{proc.name} ({proc.spec}) exited at start with code "
                           f"{popen.returncode}: {detail or 'no log output'}", f"see {log}")
        try:
            # Ready once it answers and any startup RDB load has finished.
            if client.ping() and client.info("persistence").get("loading", 0) == 0:
                return
        except redis.BusyLoadingError:
            pass
        except redis.ConnectionError:
            pass
        except redis.ResponseError as exc:
            if "LOADING" not in str(exc):
                raise
        if time.monotonic() > deadline:
            proc.stop()
            raise LabError(f"{proc.name} ({proc.spec}) did not answer PING within "
                           f"{START_TIMEOUT_S:.0f}s", f"see {proc.log_path}")
        time.sleep(0.05)
