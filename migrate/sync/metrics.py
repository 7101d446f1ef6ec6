"""Prometheus metrics of a running sync: ``kvmigrate sync --metrics-listen [HOST:]PORT``.

The figures are the status the sync already publishes every second (the same dictionary
``--status-json`` writes; :class:`migrate.sync.status.StatusPublisher` hands it to the
observer), rendered in the Prometheus text format at ``http://HOST:PORT/metrics`` by the
standard library's HTTP server, in a daemon thread. HOST defaults to 127.0.0.1; another
address must be written out (``0.0.0.0:9187``), and is said once on stderr, since anyone who
can reach the port reads the figures: there is no authentication. What is exposed: the phase,
keys, bytes copied, lag (bytes, milliseconds), ops per second, and the counts of commands
applied, translated and dropped (per command name) and refused by the target; per shard for a
cluster source (a ``shard`` label). No key names, values or URLs.

This listener is not a connection to a server (those all go through
:mod:`migrate.protocol.connect`); docs/architecture.md lists it with the other sockets.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from migrate import __version__
from migrate.errors import UsageError
from migrate.sync.options import Observer

DEFAULT_HOST = "127.0.0.1"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# status field -> (metric name, type, help); the same for the run and for each shard
FIGURES = (
    ("keys", "kvmigrate_keys", "gauge", "Keys loaded or copied to the target so far."),
    ("bytes_copied", "kvmigrate_bytes_copied", "gauge", "Bytes of the initial copy received."),
    ("lag_bytes", "kvmigrate_lag_bytes", "gauge",
     "Replication bytes the source has that the target has not applied."),
    ("lag_ms", "kvmigrate_lag_milliseconds", "gauge",
     "Age of the newest heartbeat seen on the target (lag in time)."),
    ("ops_per_s", "kvmigrate_ops_per_second", "gauge",
     "Changes applied to the target per second."),
    ("commands", "kvmigrate_commands_applied_total", "counter",
     "Commands of the source's stream replayed on the target."),
    ("target_errors", "kvmigrate_target_refused_total", "counter",
     "Commands the target answered with an error (the sync stops on the first)."),
    ("field_ttls_dropped", "kvmigrate_field_ttls_dropped_total", "counter",
     "Hash field TTLs not copied (allowed by --allow-loss field-ttl)."),
    ("stream_counters_dropped", "kvmigrate_stream_counters_dropped_total", "counter",
     "Streams copied without their counters (allowed by --allow-loss stream-counters)."),
)
PER_COMMAND = (
    ("translated_commands", "kvmigrate_commands_translated_total",
     "Source commands rewritten for the target, per command."),
    ("dropped_commands", "kvmigrate_commands_dropped_total",
     "Source commands dropped as allowed by --allow-loss, per command."),
)


def parse_metrics_listen(text: str) -> tuple[str, int]:
    """``PORT``, ``:PORT`` (both on 127.0.0.1) or ``HOST:PORT`` -> (host, port)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = "", text.strip()
    host = host.strip("[]") or DEFAULT_HOST
    if not port.isdigit() or int(port) > 65535:
        raise UsageError(f"invalid --metrics-listen {text!r}",
                         "expected [HOST:]PORT, e.g. 9187 or 127.0.0.1:9187")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback address."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    addresses = {str(info[4][0]).split("%")[0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


# --- the text format ----------------------------------------------------------------------------
def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return str(value) if isinstance(value, int) else repr(float(value))


class _Families:
    """Metric families in the order first seen, each with its samples."""

    def __init__(self) -> None:
        self.meta: dict[str, tuple[str, str]] = {}
        self.samples: dict[str, list[str]] = {}

    def add(self, name: str, kind: str, help_text: str, value: object,
            **labels: object) -> None:
        shown = _number(value)
        if shown is None:
            return
        self.meta.setdefault(name, (kind, help_text))
        pairs = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        self.samples.setdefault(name, []).append(f"{name}{{{pairs}}} {shown}" if pairs
                                                 else f"{name} {shown}")

    def text(self) -> str:
        lines = []
        for name, (kind, help_text) in self.meta.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}",
                      *self.samples[name]]
        return "\n".join(lines) + "\n"


def _figures(families: _Families, row: dict[str, Any], **labels: object) -> None:
    for field, name, kind, help_text in FIGURES:
        value = row.get(field)
        if field == "keys" and value is None:
            value = row.get("keys_loaded")  # a shard's row
        families.add(name, kind, help_text, value, **labels)
    for field, name, help_text in PER_COMMAND:
        for command, count in sorted((row.get(field) or {}).items()):
            families.add(name, "counter", help_text, count, command=command, **labels)


def render(status: dict[str, Any], ops_per_s: float | None = None) -> str:
    """The status as Prometheus text; ``ops_per_s`` stands in where the status has none."""
    families = _Families()
    families.add("kvmigrate_info", "gauge", "The kvmigrate version and the sync's mode.", 1,
                 version=__version__, mode=status.get("mode") or "")
    families.add("kvmigrate_phase", "gauge",
                 "1 for the run's current phase and the sync's own phase within it.", 1,
                 phase=status.get("phase") or "", sync_phase=status.get("sync_phase") or "")
    shards = status.get("shards") or []
    if shards:  # a cluster source: the figures per shard (sum() them for the run)
        for row in shards:
            families.add("kvmigrate_shard_phase", "gauge", "1 for each shard's phase.", 1,
                         shard=row.get("shard"), phase=row.get("phase") or "")
            _figures(families, row, shard=row.get("shard"))
        run_level = {k: status.get(k) for k in ("lag_ms", "ops_per_s", "bytes_copied")}
        _figures(families, run_level)
    else:
        _figures(families, status)
    if status.get("ops_per_s") is None and ops_per_s is not None:
        families.add("kvmigrate_ops_per_second", "gauge",
                     "Changes applied to the target per second.", round(ops_per_s, 1))
    families.add("kvmigrate_status_updated_timestamp_seconds", "gauge",
                 "When the sync last published its status (Unix time).", status.get("updated"))
    return families.text()


# --- the server ---------------------------------------------------------------------------------
class _Rate:
    """Commands per second between two status updates (for modes that publish no ops/s)."""

    def __init__(self) -> None:
        self.last: tuple[float, int] | None = None
        self.value: float | None = None

    def update(self, status: dict[str, Any]) -> None:
        commands, at = status.get("commands"), status.get("updated") or time.time()
        if not isinstance(commands, int):
            return
        if self.last is not None and at - self.last[0] >= 0.5:
            self.value = max(0.0, (commands - self.last[1]) / (at - self.last[0]))
        if self.last is None or at - self.last[0] >= 0.5:
            self.last = (at, commands)


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer

    def do_GET(self) -> None:  # the standard library's name
        if self.path.split("?")[0] in ("/metrics", "/metrics/"):
            body, code, kind = self.server.owner.text().encode(), 200, CONTENT_TYPE
        elif self.path == "/":
            body, code, kind = b"kvmigrate sync: metrics at /metrics\n", 200, "text/plain"
        else:
            body, code, kind = b"not found: metrics are at /metrics\n", 404, "text/plain"
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every few seconds is not worth a line on stderr


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: MetricsServer


class MetricsServer:
    """Binds at once (a bad address is a usage error before anything runs); serves once
    started; ``update(status)`` replaces the figures served."""

    def __init__(self, listen: str):
        host, port = parse_metrics_listen(listen)
        try:
            family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
            server_class = type("_HttpServer", (_HttpServer,), {"address_family": family})
            self.http: _HttpServer = server_class((host, port), _Handler)
        except OSError as exc:
            raise UsageError(f"cannot listen on {listen!r} for metrics: "
                             f"{exc.strerror or exc}",
                             "give --metrics-listen [HOST:]PORT free on this machine, e.g. "
                             "127.0.0.1:9187") from None
        self.http.owner = self
        self.host, self.port = str(self.http.server_address[0]), int(self.http.server_address[1])
        self.loopback = is_loopback(self.host)
        self._lock = threading.Lock()
        self._status: dict[str, Any] = {}
        self._rate = _Rate()
        self._thread = threading.Thread(target=self.http.serve_forever, kwargs={
            "poll_interval": 0.2}, daemon=True, name="metrics")

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def update(self, status: dict[str, Any]) -> None:
        with self._lock:
            self._status = dict(status)
            self._rate.update(self._status)

    def text(self) -> str:
        with self._lock:
            status, rate = dict(self._status), self._rate.value
        return render(status, rate)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        if self._thread.is_alive():
            self.http.shutdown()
        self.http.server_close()

    def observing(self, inner: Observer) -> MetricsObserver:
        return MetricsObserver(self, inner)


class MetricsObserver:
    """Passes everything to ``inner`` and keeps the metrics server's figures current."""

    def __init__(self, server: MetricsServer, inner: Observer):
        self.server, self.inner = server, inner

    def note(self, message: str) -> None:
        self.inner.note(message)

    def status(self, status: dict[str, Any]) -> None:
        self.server.update(status)
        self.inner.status(status)


@contextlib.contextmanager
def serving(listen: str | None, observer: Observer) -> Iterator[Observer]:
    """The observer to give the sync: ``observer`` itself, or with ``--metrics-listen``, one
    that also feeds a metrics server, serving for the time of the block."""
    if not listen:
        yield observer
        return
    server = MetricsServer(listen)
    server.start()
    where = "" if server.loopback else (
        " (not a loopback address: anyone who can reach it reads the figures, no "
        "authentication)")
    observer.note(f"metrics at {server.url}{where}")
    try:
        yield server.observing(observer)
    finally:
        server.close()
