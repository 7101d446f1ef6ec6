"""A source that accepts connections and never answers: every command that connects fails
with exit 3 within its connect deadline (tests/test_tls_commands.py covers sync, verify,
preflight and copy; here sync --follow, verify --full and cutover), and a following sync whose
source stops answering (SIGSTOP: the kernel still accepts connections) honours SIGTERM: it
exits (130) instead of waiting on the source, and ``--resume`` finishes once it answers."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.lab.server import ServerProcess
from tests.faults.outcomes import Outcome, record
from tests.helpers import run_cli, run_cli_many
from tests.sync.test_tls import _follow as follow
from tests.test_tls_commands import DEADLINE_S, error_line

MODE_ARGS = {"replica": [], "native": [], "scan": ["--set-notify-keyspace-events"]}


@contextmanager
def stopped(server: ServerProcess) -> Iterator[None]:
    """The server stops answering (SIGSTOP) and answers again afterwards (SIGCONT)."""
    os.kill(server.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.pid, signal.SIGCONT)


@pytest.mark.parametrize("mode", ["replica", "native", "scan"])
def test_sigterm_ends_a_sync_whose_source_stopped_answering(mode: str, lab: Fleet,
                                                            tmp_path: Path) -> None:
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    seed(source.endpoint, keys=1000)
    args = ["--source", source.url, "--target", target.url, "--mode", mode,
            "--state", str(tmp_path / "state"), *MODE_ARGS[mode]]
    proc = follow(args, tmp_path / "status.json")
    try:
        with stopped(source):
            time.sleep(1.5)  # the run meets the silent source (heartbeats, INFO) meanwhile
            proc.send_signal(signal.SIGTERM)
            try:  # a deadline, not a timing: without the watchdog this waits for minutes
                _, stderr = proc.communicate(timeout=DEADLINE_S)
            except subprocess.TimeoutExpired:
                pytest.fail("SIGTERM did not end a sync whose source stopped answering")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert "SIGTERM: stopping" in stderr and "Traceback" not in stderr
    assert "--resume continues from the state folder" in stderr, stderr
    assert stderr.strip().splitlines()[-1] == "kvmigrate: interrupted", stderr
    assert not list((tmp_path / "state").glob("**/spool/*")), "the spool was left behind"

    client = source.client()
    acknowledged = [f"ack:{i}".encode() for i in range(100)]
    for key in acknowledged:
        assert client.set(key, key)
    again = run_cli("sync", *args, "--resume")
    assert again.code == 0, again.output
    tclient = target.client()
    lost = sum(1 for key in acknowledged if tclient.get(key) != key)
    assert lost == 0
    record(Outcome(fault="source stops answering (SIGSTOP) while following; then SIGTERM",
                   mode=mode, outcome="stopped: exit 130, still stopping after 5 s (a server "
                                      "does not answer): interrupted",
                   acknowledged=len(acknowledged), lost=lost,
                   note="continued with --resume once the source answered"))


def test_more_commands_fail_within_the_deadline_on_a_silent_source(
        lab: Fleet, silent_server: tuple[str, int], tmp_path: Path) -> None:
    host, port = silent_server
    silent = f"redis://{host}:{port}"
    target = lab.start("valkey-8.0")
    commands = [["sync", "--source", silent, "--target", target.url, "--follow",
                 "--state", str(tmp_path / "follow")],
                ["verify", "--source", silent, "--target", target.url, "--full"],
                ["convert-config", "--from-server", silent, "--to", "valkey"],
                # the silent server as the target: the other side of each link
                ["sync", "--source", target.url, "--target", silent, "--mode", "replica",
                 "--state", str(tmp_path / "to-silent")],
                ["copy", "--from-server", target.url, "--target", silent],
                ["verify", "--source", target.url, "--target", silent]]
    # all at once: each waits out its own deadline (none of them writes anything)
    for args, (result, elapsed) in zip(commands, run_cli_many(commands, timeout=120),
                                       strict=True):
        assert result.code == 3, (args, result.output)
        assert elapsed < DEADLINE_S, args
        assert f"{host}:{port}" in error_line(result.stderr)


def test_cutover_fails_within_the_deadline_when_the_source_stopped_answering(
        lab: Fleet, tmp_path: Path) -> None:
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    seed(source.endpoint, keys=500)
    state = tmp_path / "state"
    synced = run_cli("sync", "--source", source.url, "--target", target.url, "--mode",
                     "replica", "--state", str(state))
    assert synced.code == 0, synced.output
    with stopped(source):
        started = time.monotonic()
        result = run_cli("cutover", "--state", str(state), "--yes", timeout=120)
        assert time.monotonic() - started < DEADLINE_S
    assert result.code == 3, result.output
    assert source.url.split("//")[1] in error_line(result.stderr)
    assert source.client().ping()  # nothing was paused or fenced: it answers as before
    record(Outcome(fault="source accepts connections and never answers", mode="cutover",
                   outcome="stopped: exit 3, cannot connect to SOURCE: Timeout reading",
                   acknowledged=0, lost=0, note="before any step: nothing paused"))
