"""Ports for lab servers, picked so that servers started at the same time do not collide.

A port is picked before the server binds it (the server is told ``--port N``), so two
processes that pick at the same time could pick the same one. Each process therefore takes
its ports from its own share of a range below the kernel's ephemeral ports (which outgoing
connections and ``bind(port 0)`` use, so a picked port is not taken by one of those before
the server binds it):

- a pytest-xdist worker (``PYTEST_XDIST_WORKER=gwI`` of ``PYTEST_XDIST_WORKER_COUNT=N``)
  takes the I-th of N equal shares;
- any other process takes the whole range;
- within its share a process goes round from a random start, skipping ports in use, so it
  hands out no port twice until it has been round the whole share.

What still collides (another test run, or an operator's server, on the same machine) is
caught where the server starts: it exits saying "Address already in use" and
:func:`migrate.lab.server.start_server` starts it again on other ports.
"""

from __future__ import annotations

import os
import random
import socket
import threading

from migrate.errors import LabError, UsageError

HOST = "127.0.0.1"
RANGE = (20000, 32000)  # below Linux's ephemeral ports (32768-60999 by default)
ENV_RANGE = "KVMIGRATE_LAB_PORTS"  # "LOW-HIGH": take lab ports from this range instead


def port_in_use(port: int) -> bool:
    """Something is bound to ``port`` on 127.0.0.1 (a server could not listen there)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return True
    return False


def lab_range() -> range:
    """The range lab ports come from: ``KVMIGRATE_LAB_PORTS`` (``LOW-HIGH``) or RANGE."""
    text = os.environ.get(ENV_RANGE, "").strip()
    if not text:
        return range(*RANGE)
    low, sep, high = text.partition("-")
    if not (sep and low.isdigit() and high.isdigit() and 1024 <= int(low) < int(high) <= 65535):
        raise UsageError(f"{ENV_RANGE}={text!r}: expected LOW-HIGH, e.g. 20000-32000")
    return range(int(low), int(high) + 1)


def share(whole: range, worker: str | None, workers: str | None) -> range:
    """This process's share of ``whole``: the I-th of N for pytest-xdist worker ``gwI`` of
    N workers, else all of it."""
    if not worker or not worker.startswith("gw") or not worker[2:].isdigit():
        return whole
    count = int(workers) if workers and workers.isdigit() else 0
    index = int(worker[2:])
    if count < 2 or index >= count:
        return whole
    size = len(whole) // count
    return range(whole.start + index * size, whole.start + (index + 1) * size)


class _Picker:
    """Goes round this process's share from a random start."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ports: range | None = None
        self._next = 0

    def pick(self) -> int:
        with self._lock:
            if self._ports is None:
                self._ports = share(lab_range(), os.environ.get("PYTEST_XDIST_WORKER"),
                                    os.environ.get("PYTEST_XDIST_WORKER_COUNT"))
                self._next = random.randrange(len(self._ports))
            ports = self._ports
            for _ in range(len(ports)):
                port = ports[self._next]
                self._next = (self._next + 1) % len(ports)
                if not port_in_use(port):
                    return port
        raise LabError(f"no free port on {HOST} in {ports.start}-{ports.stop - 1}",
                       f"stop some lab servers, or set {ENV_RANGE}=LOW-HIGH")


_picker = _Picker()


def free_port() -> int:
    """A port nothing is bound to, for a server to listen on: from this process's share of
    the lab range, and not handed out again by this process until it went round its share."""
    return _picker.pick()
