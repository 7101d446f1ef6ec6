"""`kvmigrate cutover` / `rollback` on the state folder of a real `kvmigrate sync`."""

import json
import re
from pathlib import Path

import pytest
import redis

from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.lab.server import ServerProcess
from tests.helpers import run_cli


@pytest.fixture
def synced(lab: Fleet, tmp_path: Path) -> tuple[ServerProcess, ServerProcess, Path]:
    source = lab.start("redis-7.0", password="src-secret-pw")
    target = lab.start("valkey-8.0", password="tgt-secret-pw")
    seed(source.endpoint, keys=2000)
    state = tmp_path / "state"
    result = run_cli("sync", "--source", source.url, "--target", target.url, "--to", "valkey",
                     "--mode", "native", "--state", str(state))
    assert result.code == 0, result.output
    assert all(line.strip() for line in result.stderr.splitlines()), result.stderr
    return source, target, state


def test_cutover_dry_run_then_for_real(synced: tuple[ServerProcess, ServerProcess, Path]) -> None:
    source, target, state = synced
    urls = ("--source", source.url, "--target", target.url)

    needs_password = run_cli("cutover", "--state", str(state), "--dry-run")
    assert needs_password.code == 2 and "KVMIGRATE_SOURCE_URL" in needs_password.stderr

    plan = run_cli("cutover", "--state", str(state), *urls, "--dry-run", "--format", "json")
    assert plan.code == 0, plan.output
    assert json.loads(plan.stdout)["plan"][0] == "source: CLIENT PAUSE 2000 WRITE"
    assert target.client().info("replication")["role"] == "slave"  # nothing changed
    assert source.client().set("after-dry-run", 1)

    no_yes = run_cli("cutover", "--state", str(state), *urls)
    assert no_yes.code == 2 and "--yes" in no_yes.stderr

    done = run_cli("cutover", "--state", str(state), *urls, "--yes", "--max-pause-ms", "1500")
    assert done.code == 0, done.output
    assert "writes paused" in done.stdout
    # each step that says it starts ("pause ...") says it ended ("pause: done in 12 ms")
    started = re.findall(r"^([\w-]+) \.\.\.$", done.stderr, re.M)
    assert "precheck" in started and "pause" in started, done.stderr
    for step in started:
        assert re.search(rf"^{step}: done in [\d,]+ ms$", done.stderr, re.M), step
    record = json.loads((state / "cutover.json").read_text())
    assert record["ok"] and record["paused_ms"] < 1500
    assert target.client().info("replication")["role"] == "master"
    assert target.client().get("after-dry-run") == b"1"
    with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
        source.client().set("late", 1)
    for output in (needs_password, plan, no_yes, done):
        assert "src-secret-pw" not in output.output and "tgt-secret-pw" not in output.output
    assert "secret-pw" not in (state / "cutover.json").read_text()

    # Valkey 8.0 writes RDB 11, Redis 7.0 loads 10: the way back is logical (a reverse sync
    # in proxy mode), with both servers password-protected
    back = run_cli("rollback", "--state", str(state), *urls, "--yes")
    assert back.code == 0 and "logical path" in back.stderr, back.output[-3000:]
    # the reverse sync says how far it is (was: 15 s of log lines only)
    assert re.search(r"^reverse sync: .*\(\d+%", back.stderr, re.M), back.stderr
    assert "secret-pw" not in back.output
    assert source.client().info("replication")["role"] == "master"
    assert source.client().get("after-dry-run") == b"1"
    assert source.client().set("writable-again", 1)
    with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
        target.client().set("late", 1)


def test_cutover_without_a_ledger_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("cutover", "--state", str(tmp_path), "--yes")
    assert result.code == 2 and "no sync ledger" in result.stderr
