"""SSH hosts given as ``ssh://user@host[:port][/path]``.

Host keys are checked against known_hosts (``~/.ssh/known_hosts`` unless given); an unknown
host is refused unless ``accept_new_host_key`` is set, and a changed key is always refused.
Commands are argv lists joined with shell quoting. In dry-run nothing connects: each command
is recorded in :attr:`RemoteHost.planned`, so a report can show exactly what would run.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shlex
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import paramiko

from migrate.errors import ConnectError, KvmError, UsageError


@dataclass(frozen=True)
class SshTarget:
    host: str
    user: str
    port: int = 22
    path: str | None = None

    @classmethod
    def parse(cls, url: str) -> SshTarget:
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            raise UsageError(f"malformed SSH URL {url!r}: bad port",
                             "expected ssh://USER@HOST[:PORT][/PATH]") from None
        if parts.scheme != "ssh" or not parts.hostname or not parts.username:
            raise UsageError(f"malformed SSH URL {url!r}",
                             "expected ssh://USER@HOST[:PORT][/PATH]")
        if parts.password is not None:
            raise UsageError("passwords in SSH URLs are not supported",
                             "use a key (--ssh-key) or an SSH agent")
        path = unquote(parts.path) if parts.path not in ("", "/") else None
        return cls(parts.hostname, unquote(parts.username), port or 22, path)

    def display(self) -> str:
        port = "" if self.port == 22 else f":{self.port}"
        return f"ssh://{self.user}@{self.host}{port}{self.path or ''}"

    @property
    def known_hosts_name(self) -> str:
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


@dataclass
class RemoteResult:
    code: int
    stdout: str
    stderr: str


def fingerprint(key: paramiko.PKey) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class _UnknownHostPolicy(paramiko.MissingHostKeyPolicy):
    """Refuse an unknown host (naming its fingerprint), or accept and remember it."""

    def __init__(self, accept: bool, known_hosts: Path):
        self.accept = accept
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        if not self.accept:
            raise ConnectError(
                f"host key of {hostname} ({key.get_name()} {fingerprint(key)}) is not in "
                f"{self.known_hosts}", "check the fingerprint with the host's owner, then add "
                "it to known_hosts or rerun with --accept-new-host-key")
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        with open(self.known_hosts, "a") as fh:
            fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


class RemoteHost:
    def __init__(self, target: SshTarget, *, key_file: str | os.PathLike[str] | None = None,
                 known_hosts: str | os.PathLike[str] | None = None,
                 accept_new_host_key: bool = False, dry_run: bool = False,
                 timeout: float = 15.0):
        self.target = target
        self.key_file = str(key_file) if key_file else None
        self.known_hosts = Path(known_hosts or Path.home() / ".ssh" / "known_hosts")
        self.accept_new_host_key = accept_new_host_key
        self.dry_run = dry_run
        self.timeout = timeout
        self.planned: list[str] = []
        self._client: paramiko.SSHClient | None = None

    # --- connection ------------------------------------------------------------------
    def _connect(self) -> paramiko.SSHClient:
        if self._client is not None:
            return self._client
        client = paramiko.SSHClient()
        if self.known_hosts.exists():
            client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(
            _UnknownHostPolicy(self.accept_new_host_key, self.known_hosts))
        where = self.target.display()
        try:
            client.connect(self.target.host, port=self.target.port, username=self.target.user,
                           key_filename=self.key_file, look_for_keys=self.key_file is None,
                           allow_agent=True, timeout=self.timeout,
                           banner_timeout=self.timeout, auth_timeout=self.timeout)
        except paramiko.BadHostKeyException as exc:
            raise ConnectError(f"host key of {where} has CHANGED (now {fingerprint(exc.key)})",
                               "this may be an attack; fix known_hosts only after checking "
                               "with the host's owner") from None
        except paramiko.AuthenticationException as exc:
            raise ConnectError(f"SSH authentication to {where} failed: {exc}",
                               "check the user, the key (--ssh-key) or the SSH agent") from None
        except (OSError, paramiko.SSHException) as exc:
            client.close()
            reason = str(exc).replace("[Errno None] ", "").strip() or type(exc).__name__
            raise ConnectError(f"cannot connect to {where}: {reason}",
                               "check the host, the port and that sshd is running there") \
                from None
        except BaseException:
            client.close()
            raise
        self._client = client
        return client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> RemoteHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- commands --------------------------------------------------------------------
    def run(self, argv: list[str], *, check: bool = True, timeout: float = 300.0) -> RemoteResult:
        """Run ``argv`` (quoted) on the host; in dry-run it is only recorded."""
        command = shlex.join(argv)
        self.planned.append(command)
        if self.dry_run:
            return RemoteResult(0, "", "")
        client = self._connect()
        _, stdout, stderr = client.exec_command(command, timeout=timeout)
        out = stdout.read().decode(errors="replace")
        err = stderr.read().decode(errors="replace")
        code = stdout.channel.recv_exit_status()
        if check and code != 0:
            last = (err.strip() or out.strip() or "no output").splitlines()[-1]
            raise KvmError(f"remote command failed on {self.target.display()} (exit {code}): "
                           f"{command}: {last}")
        return RemoteResult(code, out, err)

    # --- files -------------------------------------------------------------------------
    def fetch(self, remote_path: str, local_path: Path,
              progress: Callable[[int, int], None] | None = None) -> int:
        """Download atomically (to a temporary name, then renamed); returns the size."""
        self.planned.append(f"sftp get {shlex.quote(remote_path)} {shlex.quote(str(local_path))}")
        if self.dry_run:
            return 0
        sftp = self._connect().open_sftp()
        tmp = local_path.with_name(f".{local_path.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            sftp.get(remote_path, str(tmp), callback=progress)
            tmp.replace(local_path)
        except FileNotFoundError:
            raise KvmError(f"{self.target.display()}: no file {remote_path}") from None
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
            sftp.close()
        return local_path.stat().st_size

    def push(self, local_path: Path, remote_path: str,
             progress: Callable[[int, int], None] | None = None) -> int:
        """Upload atomically (temporary name on the host, then renamed); returns the size."""
        self.planned.append(f"sftp put {shlex.quote(str(local_path))} {shlex.quote(remote_path)}")
        if self.dry_run:
            return 0
        sftp = self._connect().open_sftp()
        tmp = f"{remote_path}.{uuid.uuid4().hex[:8]}.part"
        try:
            sftp.put(str(local_path), tmp, callback=progress)
            sftp.posix_rename(tmp, remote_path)
        except BaseException:
            with contextlib.suppress(OSError):
                sftp.remove(tmp)
            raise
        finally:
            sftp.close()
        return local_path.stat().st_size

    def read_file(self, remote_path: str) -> bytes:
        self.planned.append(f"sftp read {shlex.quote(remote_path)}")
        if self.dry_run:
            return b""
        sftp = self._connect().open_sftp()
        try:
            with sftp.open(remote_path, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            raise KvmError(f"{self.target.display()}: no file {remote_path}") from None
        finally:
            sftp.close()

    def write_file(self, remote_path: str, data: bytes, mode: int = 0o640) -> None:
        """Place a file atomically, with ``mode``."""
        self.planned.append(f"sftp write {shlex.quote(remote_path)} ({len(data)} bytes, "
                            f"mode {mode:o})")
        if self.dry_run:
            return
        sftp = self._connect().open_sftp()
        tmp = f"{remote_path}.{uuid.uuid4().hex[:8]}.part"
        try:
            with sftp.open(tmp, "wb") as fh:
                fh.write(data)
            sftp.chmod(tmp, mode)
            sftp.posix_rename(tmp, remote_path)
        finally:
            sftp.close()

    # --- host checks -------------------------------------------------------------------
    def free_disk(self, path: str) -> int:
        """Bytes available to the user on the filesystem holding ``path``."""
        result = self.run(["df", "-P", "-B1", path])
        if self.dry_run:
            return 0
        fields = result.stdout.strip().splitlines()[-1].split()
        return int(fields[3])

    def available_memory(self) -> int:
        """MemAvailable of the host, in bytes."""
        result = self.run(["cat", "/proc/meminfo"])
        if self.dry_run:
            return 0
        for line in result.stdout.splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
        raise KvmError(f"{self.target.display()}: /proc/meminfo has no MemAvailable")

    def service(self, action: str, name: str) -> RemoteResult:
        """``systemctl start|stop|restart|is-active NAME`` on the host."""
        if action not in ("start", "stop", "restart", "is-active"):
            raise UsageError(f"unknown service action {action!r}")
        return self.run(["systemctl", action, name], check=action != "is-active")
