"""Start and stop one real server process on 127.0.0.1, in its own directory with its own log."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

import redis

from migrate.endpoint import Endpoint, TlsSettings
from migrate.errors import LabError, UsageError
from migrate.lab.dragonfly import dragonfly_args
from migrate.lab.install import Installed
from migrate.lab.ports import HOST, free_port, port_in_use
from migrate.lab.tls import ServerTls

__all__ = ["HOST", "PortClash", "ServerProcess", "free_port", "on_fresh_ports", "port_in_use",
           "restart_server", "start_server"]

START_TIMEOUT_S = 30.0
PORT_ATTEMPTS = 5  # starts on fresh ports after a server found one of its ports taken
IN_USE = "address already in use"  # what Redis, Valkey and Dragonfly log then (EADDRINUSE)
LOGS = ("stdout.log", "server.log")

T = TypeVar("T")


class PortClash(LabError):
    """The server exited at start because a port it was given was taken meanwhile (by a
    server another process started at the same time)."""


def on_fresh_ports(start: Callable[[], T], attempts: int = PORT_ATTEMPTS) -> T:
    """``start()``, again while it raises :class:`PortClash` (``start`` picks its ports
    afresh each time, with :func:`free_port`), at most ``attempts`` times."""
    for attempt in range(1, attempts + 1):
        try:
            return start()
        except PortClash:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


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
    TLS port (and it has no plain one). Without ``port`` it listens on a free port, and is
    started again on other ports when one was taken before it could bind it.
    """
    if tls is not None and flavor == "dragonfly":
        raise LabError("the lab starts Redis and Valkey servers with TLS, not Dragonfly")

    def start(port: int) -> ServerProcess:
        return _start(installed, name=name, spec=spec, flavor=flavor, directory=directory,
                      port=port, extra_args=extra_args or [], password=password,
                      config_file=config_file, lab_defaults=lab_defaults, tls=tls)

    if port is None:
        return on_fresh_ports(lambda: start(free_port()))
    if port_in_use(port):
        raise UsageError(f"port {port} on {HOST} is in use", "choose another with --port")
    return start(port)


def _start(installed: Installed, *, name: str, spec: str, flavor: str, directory: Path,
           port: int, extra_args: list[str], password: str | None, config_file: Path | None,
           lab_defaults: bool, tls: ServerTls | None) -> ServerProcess:
    directory.mkdir(parents=True, exist_ok=True)
    proc = ServerProcess(name=name, spec=spec, flavor=flavor, version=installed.version,
                         port=port, directory=str(directory), password=password)
    if tls is not None:
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
    args += extra_args
    proc.argv = args
    before = _Before(directory)
    try:
        _spawn(proc, before)
    except PortClash:
        before.clean_up()  # e.g. the nodes.conf a cluster node wrote: the next start is fresh
        raise
    proc.save()
    return proc


def restart_server(proc: ServerProcess) -> None:
    """Stop the server and start it again: same port, folder and arguments (a lab server
    keeps no data across a restart unless its arguments persist it)."""
    proc.stop()
    _spawn(proc, _Before(Path(proc.directory)))
    proc.save()


def _spawn(proc: ServerProcess, before: _Before) -> None:
    """Run ``proc.argv`` in its folder and wait until it is ready."""
    with open(Path(proc.directory) / "stdout.log", "ab") as out:
        popen = subprocess.Popen(proc.argv, cwd=proc.directory, stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
    proc.pid = popen.pid
    _wait_ready(proc, popen, before)


class _Before:
    """A server directory before a start: what the start added, and its logs' lengths."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.names = {p.name for p in directory.iterdir()}
        self.sizes = {name: _size(directory / name) for name in LOGS}

    def new_output(self) -> str:
        """What the start wrote to the logs."""
        text = []
        for name, size in self.sizes.items():
            with contextlib.suppress(OSError), open(self.directory / name, "rb") as fh:
                fh.seek(size)
                text.append(fh.read().decode(errors="replace"))
        return "\n".join(text)

    def clean_up(self) -> None:
        """Remove what the start added, but its logs."""
        for path in self.directory.iterdir():
            if path.name not in self.names and path.name not in LOGS and path.is_file():
                path.unlink(missing_ok=True)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _ours(client: redis.Redis, popen: subprocess.Popen[bytes]) -> bool:
    """The server that answered is the one we started (not one another process started
    on the same port at the same time, while ours is failing to bind it)."""
    pid = client.info("server").get("process_id")
    return pid is None or int(pid) == popen.pid


def _wait_ready(proc: ServerProcess, popen: subprocess.Popen[bytes], before: _Before) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    client = proc.client()
    try:
        while True:
            if popen.poll() is not None:
                _exited(proc, popen, before)
            try:
                # Ready once it answers, is ours and any startup RDB load has finished.
                if client.ping() and _ours(client, popen) and \
                        client.info("persistence").get("loading", 0) == 0:
                    return
            except redis.BusyLoadingError:
                pass
            except redis.ConnectionError:
                pass
            except redis.ResponseError as exc:
                # LOADING, or a password refused: another's server on the port, ours exiting
                if not any(word in str(exc) for word in ("LOADING", "NOAUTH", "WRONGPASS",
                                                         "password")):
                    raise
            if time.monotonic() > deadline:
                proc.stop()
                raise LabError(f"{proc.name} ({proc.spec}) did not answer PING within "
                               f"{START_TIMEOUT_S:.0f}s", f"see {proc.log_path}")
            time.sleep(0.05)
    finally:
        client.close()


def _exited(proc: ServerProcess, popen: subprocess.Popen[bytes], before: _Before) -> None:
    output = before.new_output()
    detail = proc.log_tail() or (Path(proc.directory) / "stdout.log").read_text(
        errors="replace").strip().replace("\n", " | ")[-400:]
    # a config error is printed before the log file opens: point at what exists
    log = proc.log_path if proc.log_path.exists() else Path(proc.directory) / "stdout.log"
    error = PortClash if IN_USE in output.lower() else LabError
    raise error(f"{proc.name} ({proc.spec}) exited at start with code {popen.returncode}: "
                f"{detail or 'no log output'}", f"see {log}")
