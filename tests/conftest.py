"""Fixtures that run real servers: lab servers of any spec on free ports, and an sshd on
loopback. A server that cannot be provisioned fails the test run with the reason; nothing
is skipped silently."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from migrate.lab import install
from migrate.lab.cluster import ClusterHandle, start_cluster
from migrate.lab.fleet import Fleet
from migrate.lab.specs import SPECS
from migrate.lab.tls import Pki, ServerTls, make_pki

REPO = Path(__file__).resolve().parent.parent

# Test data that came from other projects (Redis's own test-suite RDB files, the upstream
# redis.conf, other RDB parsers' corpora) is never kept in this repository: tests that need it
# read it from the folder this variable names (.ci/run passes it), and are skipped, with this
# reason in the summary, where it is not set.
TESTDATA_ENV = "KVMIGRATE_TESTDATA"
_TESTDATA_SET = os.environ.get(TESTDATA_ENV, "")
TESTDATA = Path(_TESTDATA_SET or "/nonexistent-" + TESTDATA_ENV).expanduser().resolve()
NO_TESTDATA = (f"{TESTDATA_ENV} is not set: this test reads data from other projects, which "
               "is not kept in the repository (.ci/run sets it)")
needs_testdata = pytest.mark.skipif(not _TESTDATA_SET, reason=NO_TESTDATA)


def from_testdata(*parts: str) -> Path:
    """A file under KVMIGRATE_TESTDATA: the test is skipped (with the reason) where the
    variable is not set, and fails where it is set but the file is missing."""
    if not _TESTDATA_SET:
        pytest.skip(NO_TESTDATA)
    path = TESTDATA.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{TESTDATA_ENV}: {path} is missing", pytrace=False)
    return path


def pytest_configure(config: pytest.Config) -> None:
    if _TESTDATA_SET and not TESTDATA.is_dir():
        raise pytest.UsageError(f"{TESTDATA_ENV}={_TESTDATA_SET}: no such folder")


# The slowest test files (by `pytest --durations` on the CI machine), run first: the three
# workers of `make test` (`pytest -n 3`: the tests wait on servers much of the time, so a
# third worker on two cores keeps the CPU busy) then finish together instead of one waiting
# out a long test at the end. Only the order changes; a file missing here runs where it
# always did.
SLOW_FIRST = ("tests/cluster/test_cluster_sync.py", "tests/faults/test_link_faults.py",
              "tests/sync/test_tls.py", "tests/sync/test_write_matrix.py",
              "tests/faults/test_killed.py", "tests/faults/test_server_faults.py",
              "tests/faults/test_silent_source.py", "tests/test_tls_commands.py",
              "tests/sync/test_replica.py", "tests/sync/test_every_write.py",
              "tests/orchestrate/test_playbooks.py", "tests/faults/test_target_oom.py",
              "tests/copy/test_replication_load.py", "tests/proxy/test_engine.py",
              "tests/dragonfly/test_copy_into_dragonfly.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@pytest.fixture(scope="session")
def installed_specs() -> dict[str, install.Installed]:
    """Every lab spec, installed (from the cache when `make test` already did it)."""
    records = {}
    for spec in SPECS.values():
        try:
            records[spec.name] = install.install(spec)
        except Exception as exc:  # surface as a failure with the reason, never a skip
            pytest.fail(f"cannot provision lab server {spec.name}: {exc}", pytrace=False)
    return records


NO_DRAGONFLY = ("no Dragonfly: none in the lab cache and KVMIGRATE_DRAGONFLY_FROM is not set "
                "(kvmigrate lab install dragonfly [--from FILE] provides one)")


@pytest.fixture(scope="session")
def dragonfly_installed() -> install.Installed:
    """The lab's Dragonfly: the one in the lab cache, or installed from
    KVMIGRATE_DRAGONFLY_FROM. No registry here packages Dragonfly, so where none can be had
    the tests that need it are skipped with that reason (never silently)."""
    from migrate.lab import dragonfly

    record = install.installed(dragonfly.SPEC)
    if record is None and os.environ.get(dragonfly.ENV_FROM):
        try:
            record = dragonfly.install_dragonfly()
        except Exception as exc:  # given one that does not work: a failure, not a skip
            pytest.fail(f"cannot install Dragonfly from {dragonfly.ENV_FROM}: {exc}",
                        pytrace=False)
    if record is None:
        pytest.skip(NO_DRAGONFLY)
    return record


@pytest.fixture
def lab(installed_specs: dict[str, install.Installed], tmp_path: Path) -> Iterator[Fleet]:
    """Start servers with ``lab.start("redis-7.0")``; all are stopped after the test."""
    fleet = Fleet(tmp_path / "lab")
    try:
        yield fleet
    finally:
        fleet.stop_all()


@pytest.fixture(scope="session")
def session_lab(installed_specs: dict[str, install.Installed],
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """A fleet shared by a whole session, for read-only tests on seeded servers."""
    fleet = Fleet(tmp_path_factory.mktemp("session-lab"))
    try:
        yield fleet
    finally:
        fleet.stop_all()


@pytest.fixture
def isolated_lab_dir(tmp_path: Path, installed_specs: dict[str, install.Installed],
                     monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private KVMIGRATE_LAB_DIR for tests of named servers, sharing the installed binaries;
    every server a test started there (through the CLI too) is stopped afterwards."""
    from migrate.lab import paths, registry

    real_servers = paths.servers_dir()
    lab_dir = tmp_path / "labdir"
    lab_dir.mkdir()
    (lab_dir / "servers").symlink_to(real_servers)
    monkeypatch.setenv("KVMIGRATE_LAB_DIR", str(lab_dir))
    try:
        yield lab_dir
    finally:
        registry.down_all()


@dataclass
class Sshd:
    host: str
    port: int
    user: str
    key_file: Path
    known_hosts: Path
    host_public_key: str

    @property
    def url(self) -> str:
        return f"ssh://{self.user}@{self.host}:{self.port}"


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """Debian's sshd on 127.0.0.1 with a private config, host key and user key."""
    binary = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(binary).exists():
        pytest.fail("sshd is not installed: run `make test` (it installs openssh-server)",
                    pytrace=False)
    from migrate.lab.server import free_port

    d = tmp_path_factory.mktemp("sshd")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key")],
                   check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "user_key")],
                   check=True)
    authorized = d / "authorized_keys"
    authorized.write_text((d / "user_key.pub").read_text())
    port = free_port()
    user = os.environ.get("USER") or "root"
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\n"
        f"PidFile {d / 'sshd.pid'}\nAuthorizedKeysFile {authorized}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nStrictModes no\n"
        "UsePAM no\nPermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n")
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen([binary, "-D", "-f", str(d / "sshd_config"), "-E", str(d / "log")])
    host_pub = (d / "host_key.pub").read_text().split()
    known = d / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    deadline = time.monotonic() + 10
    import socket

    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (d / "log").read_text() if (d / "log").exists() else ""
                pytest.fail(f"sshd did not start: {log.strip()[-300:]}", pytrace=False)
            time.sleep(0.05)
    try:
        yield Sshd("127.0.0.1", port, user, d / "user_key", known, f"{host_pub[0]} {host_pub[1]}")
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def lab_cluster(lab: Fleet) -> Iterator[Callable[..., ClusterHandle]]:
    """Start clusters with ``lab_cluster("valkey-9", shards=3, replicas=0, password=None,
    tls=None)``: ready (cluster_state:ok on every node) when it returns; every node is stopped
    after the test. With ``tls=ServerTls(pki, ...)`` the nodes speak TLS only."""
    handles: list[ClusterHandle] = []

    def start(spec: str, shards: int = 3, *, replicas: int = 0,
              password: str | None = None, tls: ServerTls | None = None) -> ClusterHandle:
        handles.append(start_cluster(lab, spec, shards, replicas=replicas, password=password,
                                     tls=tls))
        return handles[-1]

    try:
        yield start
    finally:
        for handle in handles:
            handle.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A private CA with a server certificate (127.0.0.1) and a client certificate, made
    with openssl for this test run (start a TLS server with ``tls=ServerTls(pki)``)."""
    return make_pki(tmp_path_factory.mktemp("pki"), "kvmigrate test")


@pytest.fixture(scope="session")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A second, unrelated CA (the wrong CA for servers of :func:`pki`)."""
    return make_pki(tmp_path_factory.mktemp("other-pki"), "kvmigrate other")


@pytest.fixture
def silent_server() -> Iterator[tuple[str, int]]:
    """A TCP listener on 127.0.0.1 that accepts connections and never sends a byte:
    (host, port). Every connection it accepted is closed after the test."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for conn in accepted:
            conn.close()
