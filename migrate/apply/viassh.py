"""A fresh snapshot fetched over SSH: BGSAVE on the source, wait for it, then SFTP the file
(host keys checked by :class:`migrate.remote.ssh.RemoteHost`)."""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable
from pathlib import Path

import redis

from migrate.endpoint import Endpoint
from migrate.errors import KvmError, UsageError
from migrate.remote.ssh import RemoteHost, SshTarget


def bgsave_and_wait(endpoint: Endpoint, *, timeout: float = 3600.0, poll: float = 0.2) -> None:
    """Run BGSAVE and return once a save that started after the call has succeeded."""
    client = endpoint.client()
    before = int(client.lastsave().timestamp())
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.bgsave()
            break
        except redis.ResponseError as exc:  # another save or an AOF rewrite is running
            if "in progress" not in str(exc) or time.monotonic() > deadline:
                raise KvmError(f"{endpoint.display()} refused BGSAVE: {exc}") from None
            time.sleep(poll)
    while True:
        info = client.info("persistence")
        if not info.get("rdb_bgsave_in_progress") and \
                int(client.lastsave().timestamp()) >= before:
            if info.get("rdb_last_bgsave_status") != "ok":
                raise KvmError(f"BGSAVE failed on {endpoint.display()}",
                               "see the server's log")
            if int(info.get("rdb_last_save_time", 0)) >= before:
                return
        if time.monotonic() > deadline:
            raise KvmError(f"BGSAVE on {endpoint.display()} did not finish in {timeout:.0f} s")
        time.sleep(poll)


def fetch_via_ssh(endpoint: Endpoint, ssh_url: str, dest: Path, *,
                  key_file: str | None = None, known_hosts: str | None = None,
                  progress: Callable[[int, int], None] | None = None) -> int:
    target = SshTarget.parse(ssh_url)
    if not target.path:
        raise UsageError(f"--via-ssh {ssh_url!r} names no file",
                         "expected ssh://USER@HOST[:PORT]/PATH/TO/dump.rdb")
    with RemoteHost(target, key_file=key_file, known_hosts=known_hosts) as host:
        host.run(["test", "-d", posixpath.dirname(target.path) or "."])  # before BGSAVE
        bgsave_and_wait(endpoint)
        return host.fetch(target.path, dest, progress=progress)
