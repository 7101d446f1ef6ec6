"""migrate.protocol.connect on real servers: TLS with a private CA and client certificates,
AUTH with an ACL user, CLIENT SETNAME on every raw client, and deadlines that hold against a
listener that never answers and a server that stops answering (SIGSTOP)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from migrate.apply.snapshot import fetch_snapshot
from migrate.endpoint import Endpoint, TlsSettings
from migrate.errors import ConnectError, ExitCode, UsageError
from migrate.lab.fleet import Fleet
from migrate.lab.server import ServerProcess
from migrate.lab.tls import Pki, ServerTls
from migrate.protocol.connect import connect
from migrate.protocol.pipeline import PipelineWriter
from migrate.protocol.rawconn import RawConn
from migrate.sync.psync import ReplicationLink

SPECS = ["redis-7.0", "valkey-8.0", "valkey-9"]


def _names(server: ServerProcess) -> dict[str, str]:
    """CLIENT LIST of ``server``: each client's flags by name (other than the asker)."""
    rows = server.client().client_list()
    return {r["name"]: r["flags"] for r in rows if r["cmd"] != "client|list"}


@pytest.mark.parametrize("spec", SPECS)
def test_tls_with_a_private_ca_and_client_certificates(lab: Fleet, pki: Pki, spec: str,
                                                       tmp_path: Path) -> None:
    server = lab.start(spec, password="pw-tls", tls=ServerTls(pki, auth_clients=True))
    ep = server.endpoint
    assert ep.tls and ep.tls_settings.cert
    with RawConn(ep, db=2) as conn:
        assert conn.call("SET", "k", "v") == b"OK"
        assert conn.call("CLIENT", "GETNAME") == b"kvmigrate"
    with PipelineWriter(ep, db=2) as writer:
        for i in range(2000):
            writer.send("RPUSH", "list", i)
        assert writer.flush().errors == 0
    assert server.client(2).llen("list") == 2000
    snap = fetch_snapshot(ep, tmp_path / "s.rdb")
    assert snap.size > 0
    # without the client certificate the server refuses the handshake
    no_cert = replace(ep, tls_settings=TlsSettings(ca=ep.tls_settings.ca))
    with pytest.raises(ConnectError) as info:
        RawConn(no_cert)
    assert info.value.exit_code == ExitCode.CONNECT
    assert "client certificate" in info.value.one_line()
    with pytest.raises(ConnectError) as info:
        no_cert.client()
    assert "client certificate" in info.value.one_line()


def test_wrong_ca_and_insecure(lab: Fleet, pki: Pki, other_pki: Pki) -> None:
    server = lab.start("valkey-9", tls=ServerTls(pki))
    wrong = replace(server.endpoint, tls_settings=TlsSettings(ca=str(other_pki.ca_cert)))
    for attempt in (lambda: RawConn(wrong), lambda: wrong.client()):
        with pytest.raises(ConnectError) as info:
            attempt()
        line = info.value.one_line()
        assert "certificate verify failed" in line and "--source-tls-ca" in line
        assert "\n" not in line
    insecure = replace(server.endpoint, tls_settings=TlsSettings(insecure=True))
    with RawConn(insecure) as conn:
        assert conn.call("PING") == b"PONG"
    assert insecure.client().ping()


def test_plain_url_to_a_tls_port_is_refused_with_a_reason(lab: Fleet, pki: Pki) -> None:
    server = lab.start("valkey-9", tls=ServerTls(pki))
    plain = Endpoint("127.0.0.1", server.port)
    with pytest.raises(ConnectError) as info:
        RawConn(plain, timeout=5)
    assert info.value.exit_code == ExitCode.CONNECT


def test_tls_options_need_a_rediss_url_and_readable_files(pki: Pki, tmp_path: Path) -> None:
    plain = Endpoint.parse("redis://127.0.0.1:1")
    with pytest.raises(UsageError, match="not a TLS URL"):
        plain.with_tls(TlsSettings(ca=str(pki.ca_cert)), "--source-tls")
    tls = Endpoint.parse("rediss://127.0.0.1:1")
    with pytest.raises(UsageError, match=r"--target-tls-ca .*: no such file"):
        tls.with_tls(TlsSettings(ca=str(tmp_path / "none.pem")), "--target-tls")
    with pytest.raises(UsageError, match="--source-tls-key needs --source-tls-cert"):
        tls.with_tls(TlsSettings(key=str(pki.client_key)), "--source-tls")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(UsageError, match="cannot use the TLS files"):
        RawConn(tls.with_tls(TlsSettings(ca=str(garbage)), "--source-tls"))
    assert tls.with_tls(TlsSettings(), "--source-tls") is tls


def test_acl_user_and_setname_on_every_raw_client(lab: Fleet, tmp_path: Path) -> None:
    server = lab.start("valkey-9", password="admin-pw")
    server.client().execute_command("ACL", "SETUSER", "mover", "on", ">mover-pw", "~*", "&*",
                                    "+@all")
    ep = Endpoint.parse(f"redis://mover:mover-pw@127.0.0.1:{server.port}")
    with RawConn(ep) as conn:
        assert conn.call("ACL", "WHOAMI") == b"mover"
        assert _names(server).get("kvmigrate") is not None
    with PipelineWriter(ep) as writer:
        writer.send("SET", "a", "1")
        writer.flush()
        assert "kvmigrate" in _names(server)
    link = ReplicationLink(ep, tmp_path / "spool", lambda: 0, lambda _m: None)
    try:
        how, _, _ = link.psync(None, -1)
        assert how == "full"
        flags = [r["flags"] for r in server.client().client_list() if r["name"] == "kvmigrate"]
        assert any("S" in f for f in flags), flags  # the replication link is named too
    finally:
        link.close()
    bad = Endpoint.parse(f"redis://mover:wrong-pw@127.0.0.1:{server.port}")
    with pytest.raises(ConnectError) as info:
        RawConn(bad)
    assert "wrong-pw" not in info.value.one_line()
    with pytest.raises(ConnectError, match="requires a password"):
        RawConn(Endpoint.parse(f"redis://127.0.0.1:{server.port}"))


@pytest.mark.parametrize("scheme", ["redis", "rediss"])
def test_a_listener_that_never_answers_fails_within_the_deadline(
        silent_server: tuple[str, int], scheme: str) -> None:
    host, port = silent_server
    ep = Endpoint.parse(f"{scheme}://{host}:{port}")
    for attempt in (lambda: connect(ep, connect_timeout=1.0),
                    lambda: ReplicationLink(ep, Path("/nonexistent"), lambda: 0,
                                            lambda _m: None)._connect()):
        started = time.monotonic()
        with pytest.raises(ConnectError) as info:
            attempt()
        assert info.value.exit_code == ExitCode.CONNECT
        assert time.monotonic() - started < 15


@contextmanager
def _stopped(server: ServerProcess) -> Iterator[None]:
    os.kill(server.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.pid, signal.SIGCONT)


def test_a_server_that_stops_answering_fails_each_read_within_its_deadline(
        lab: Fleet, pki: Pki) -> None:
    server = lab.start("valkey-9", tls=ServerTls(pki))
    conn = RawConn(server.endpoint, timeout=1.0)
    writer = PipelineWriter(server.endpoint, timeout=1.0)
    try:
        with _stopped(server):
            started = time.monotonic()
            with pytest.raises(ConnectError, match="did not answer within 1 s"):
                conn.call("PING")
            writer.send("SET", "k", "v")
            with pytest.raises(ConnectError, match="no reply within 1 s"):
                writer.flush()
            assert time.monotonic() - started < 10
    finally:
        conn.close()
        writer.close()
    with RawConn(server.endpoint) as again:  # the server itself is fine once resumed
        assert again.call("PING") == b"PONG"


def test_pipelined_replies_of_every_kind_come_back_in_order(lab: Fleet) -> None:
    """read_replies takes buffered replies in C, up to the count asked for: zeros, nils,
    errors and values spread over several reads come back in order, and replies past the
    count are kept for the next read."""
    server = lab.start("valkey-8.0")
    big = b"x" * (3 << 20)  # more than one read
    server.client().set("big", big)
    with RawConn(server.endpoint) as conn:
        commands = [c for i in range(500) for c in (("EXISTS", f"none{i}"), ("GET", f"n{i}"),
                                                    ("INCRBY", "k", 0), ("GET", "big"),
                                                    ("LLEN", "big"))]
        conn.send_many([*commands, ("PING",)])
        replies = conn.read_replies(len(commands))
        assert replies[:4] == [0, None, 0, big]
        assert "WRONGTYPE" in str(replies[4])
        shown = [str(r) if isinstance(r, Exception) else r for r in replies]
        assert shown == shown[:5] * 500
        assert conn.read_replies(1) == [b"PONG"]
        assert conn.read_replies(0) == []


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_a_closed_pipeline_leaves_the_server_at_once(lab: Fleet, pki: Pki, tls: bool) -> None:
    """Its reader thread waits in recv (a reply may be owed for 60 s): close() ends that
    wait, so the connection is gone from the server now, not when the wait times out."""
    server = lab.start("valkey-8.0", tls=ServerTls(pki) if tls else None)
    with PipelineWriter(server.endpoint, db=0, timeout=120) as writer:
        writer.send("SET", "k", "v")
        assert writer.flush().replied == 1
        assert "kvmigrate" in _names(server)
    deadline = time.monotonic() + 10  # far below the 120 s the reader would wait
    while "kvmigrate" in _names(server):
        assert time.monotonic() < deadline, "the closed pipeline's connection is still open"
        time.sleep(0.05)


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_a_closed_pipeline_has_no_reader_thread_left(lab: Fleet, pki: Pki, tls: bool) -> None:
    """close() returns once the reader thread has ended. Closed under a reader that had
    taken the socket's number but not yet begun to wait on it, the number went to the next
    file opened (a pipe to a child process, say), which that reader then held open until its
    60 s timeout: the child's output had no end until then."""
    server = lab.start("valkey-8.0", tls=ServerTls(pki) if tls else None)
    name = f"kvm-pipeline-{server.port}"
    for i in range(20):
        with PipelineWriter(server.endpoint, db=0) as writer:
            writer.send("SET", "k", i)
            assert writer.flush().replied == 1
            assert name in [t.name for t in threading.enumerate()]
        assert name not in [t.name for t in threading.enumerate()], f"closing #{i}"
