"""Playbooks on real lab servers (and a real sshd for remote steps)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis

from migrate.errors import UsageError
from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.lab.server import ServerProcess
from migrate.orchestrate import playbook as pb
from migrate.orchestrate.runner import to_args
from tests.conftest import Sshd
from tests.cutover.test_cutover_native import FailoverWriter
from tests.helpers import run_cli

BUILTIN = ["redis-to-valkey-live", "redis-to-dragonfly-live", "redis-to-valkey-rdb-window",
           "rollback"]


def test_builtin_playbooks_load_and_name_real_commands() -> None:
    names = {p.stem for p in pb.available()}
    assert set(BUILTIN) <= names
    helps = {}
    for name in BUILTIN:
        book = pb.load(name)
        assert book.steps and book.description
        for step in book.steps:
            if step.kind == "run":
                if step.op not in helps:
                    helps[step.op] = run_cli(*step.op.split(), "--help")
                assert helps[step.op].code == 0, f"{name}: kvmigrate {step.op} does not exist"
                for flag in to_args({k: v for k, v in step.params.items() if k != "args"}):
                    if flag.startswith("--"):
                        assert flag in helps[step.op].stdout, f"{name}/{step.name}: {flag}"


def test_to_args() -> None:
    assert to_args({"args": ["f.conf"], "max_pause_ms": 1500, "yes": True, "no": False,
                    "scripts": ["a", "b"]}) == [
        "f.conf", "--max-pause-ms", "1500", "--yes", "--scripts", "a", "--scripts", "b"]


def test_bad_playbooks_and_variables(tmp_path: Path) -> None:
    book = pb.load("redis-to-valkey-live")
    with pytest.raises(UsageError, match="needs --var source"):
        pb.resolve_vars(book, {"target": "redis://h:1"})
    with pytest.raises(UsageError, match="no variable bogus"):
        pb.resolve_vars(book, {"source": "redis://h:1", "target": "redis://h:2", "bogus": "1"})
    cases = {
        "bad.yaml": "steps: [\n",
        "noop.yaml": "steps:\n  - name: x\n    run: frobnicate\n",
        "twokinds.yaml": "steps:\n  - name: x\n    run: verify\n    gate: approval\n",
        "undeclared.yaml": "steps:\n  - name: x\n    run: verify\n    with: {source: '${nope}'}\n",
        "boolkey.yaml": "steps:\n  - name: x\n    run: cutover\n    with: {yes: true}\n",
    }
    for fname, text in cases.items():
        (tmp_path / fname).write_text(text)
        with pytest.raises(UsageError):
            pb.load(str(tmp_path / fname))
    result = run_cli("playbook", "run", str(tmp_path / "noop.yaml"))
    assert result.code == 2 and "unknown run 'frobnicate'" in result.stderr


def _state(server: ServerProcess) -> tuple:
    c = server.client()
    return (c.info("replication")["role"], c.dbsize(),
            c.execute_command("DEBUG", "DIGEST"), c.config_get("min-replicas-to-write"))


def test_dry_run_changes_nothing_and_renders_the_change_review(lab: Fleet, tmp_path: Path) -> None:
    source = lab.start("redis-7.0", password="s3cr3t-source")
    target = lab.start("valkey-8.0")
    seed(source.endpoint, keys=2000)
    before = (_state(source), _state(target))
    report = tmp_path / "review.md"
    result = run_cli("playbook", "run", "redis-to-valkey-live", "--var", f"source={source.url}",
                     "--var", f"target={target.url}", "--var", f"state={tmp_path / 'st'}",
                     "--dry-run", "--report", str(report))
    assert result.code == 0, result.output
    assert (_state(source), _state(target)) == before
    assert not (tmp_path / "st" / "sync").exists()
    text = report.read_text()
    data = json.loads(report.with_suffix(".json").read_text())
    for section in ("## Summary", "## Steps", "## Risks", "## Preflight findings",
                    "## Rollback plan", "Expected write pause at cut-over: at most 2000 ms"):
        assert section in text
    assert "kvmigrate cutover --state" in text and "CLIENT PAUSE 2000 WRITE" in json.dumps(data)
    assert data["source"]["keys"] == 2000 and data["estimate"]["copy_path"] == "native"
    assert data["rollback"]["native"] is False  # Valkey 8.0 writes RDB 11 > Redis 7.0's 10
    assert any(f["id"] == "rdb.version-gap" for f in data["findings"])
    assert any(not f.get("remediation") for f in data["findings"])
    assert "\nRemedy: \n" not in text  # a finding without a remedy gets no empty line
    for blob in (text, json.dumps(data), result.output):
        assert "s3cr3t-source" not in blob


@pytest.mark.parametrize(("source_spec", "mode"), [("redis-7.0", "native"),
                                                   ("redis-8", "proxy")])
def test_live_playbook_under_a_failover_writer(source_spec: str, mode: str, lab: Fleet,
                                               tmp_path: Path) -> None:
    """auto picks native replication for Redis 7.0 and proxy mode for Redis 8 (whose RDB 12
    Valkey 8.0 cannot load); the sync runs in the background until the cut-over."""
    source, target = lab.start(source_spec), lab.start("valkey-8.0")
    seed(source.endpoint, keys=3000, profile="strings" if mode == "proxy" else "mixed")
    source.client().config_set("repl-diskless-sync-delay", 0)
    writer = FailoverWriter(source, target)
    thread = writer.start()
    time.sleep(0.3)
    report = tmp_path / "run.md"
    result = run_cli("playbook", "run", "redis-to-valkey-live", "--var", f"source={source.url}",
                     "--var", f"target={target.url}", "--var", f"state={tmp_path / 'st'}",
                     "--var", "max_pause_ms=1500", "--yes", "--report", str(report))
    time.sleep(0.3)
    writer.stop.set()
    thread.join(10)
    assert result.code == 0, result.output[-3000:]
    _no_acknowledged_write_lost(writer, source, target, tmp_path / "st" / "sync")
    ledger = json.loads((tmp_path / "st" / "playbook" / "ledger.json").read_text())
    assert [p["name"] for p in ledger["phases"] if p["status"] == "done"] == [
        s.name for s in pb.load("redis-to-valkey-live").steps]
    assert "Record of a run" in report.read_text()
    sync_ledger = json.loads((tmp_path / "st" / "sync" / "ledger.json").read_text())
    assert sync_ledger["run"]["mode"] == mode
    assert target.client().info("replication")["role"] == "master"


def test_resume_after_an_unapproved_gate(lab: Fleet, tmp_path: Path) -> None:
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    seed(source.endpoint, keys=500)
    args = ("playbook", "run", "redis-to-valkey-live", "--var", f"source={source.url}",
            "--var", f"target={target.url}", "--var", f"state={tmp_path / 'st'}")
    first = run_cli(*args)
    assert first.code != 0 and "needs approval" in first.stderr and "--resume" in first.stderr
    assert target.client().info("replication")["role"] == "slave"  # synced, not cut over
    again = run_cli(*args)
    assert again.code == 2 and "--resume" in again.stderr
    resumed = run_cli(*args, "--resume", "--yes")
    assert resumed.code == 0, resumed.output[-2000:]
    assert "[verify] done in an earlier run: skipped" in resumed.stderr
    # the cut-over still to come needs the sync running: it is started again with --resume
    assert "[sync] started in the background" in resumed.stderr
    ledger = json.loads((tmp_path / "st" / "playbook" / "ledger.json").read_text())
    sync_phase = next(p for p in ledger["phases"] if p["name"] == "sync")
    assert sync_phase["counters"]["commands"][-1].endswith("--follow --resume")
    assert target.client().info("replication")["role"] == "master"


def test_remote_steps_through_sshd(sshd: Sshd, tmp_path: Path) -> None:
    remote_dir = tmp_path / "remote"
    remote_dir.mkdir()
    (remote_dir / "dump.rdb").write_bytes(b"REDIS0011" + bytes(1000))
    book = tmp_path / "remote.yaml"
    host = {"host": "${host}", "key": str(sshd.key_file), "known_hosts": "${known}"}
    book.write_text(json.dumps({
        "name": "remote-test",
        "vars": {"host": {"required": True}, "known": {"required": True},
                 "dir": {"default": str(remote_dir)}},
        "steps": [
            {"name": "disk", "remote": "check-disk", "with": {**host, "path": "${dir}"}},
            {"name": "fetch", "remote": "fetch",
             "with": {**host, "remote": "${dir}/dump.rdb", "local": str(tmp_path / "got.rdb")}},
            {"name": "push", "remote": "push",
             "with": {**host, "local": str(tmp_path / "got.rdb"), "remote": "${dir}/up.rdb"}},
            {"name": "list", "remote": "run", "with": {**host, "argv": ["ls", "${dir}"]}},
        ]}))
    base = ("playbook", "run", str(book), "--var", f"host={sshd.url}",
            "--var", f"known={sshd.known_hosts}", "--state", str(tmp_path / "st"))
    plan = run_cli(*base, "--dry-run")
    assert plan.code == 0, plan.output
    assert "sftp get" in plan.stdout and not (tmp_path / "got.rdb").exists()
    done = run_cli(*base)
    assert done.code == 0, done.output
    assert (tmp_path / "got.rdb").read_bytes() == (remote_dir / "up.rdb").read_bytes()
    unknown = tmp_path / "empty_known_hosts"
    refused = run_cli("playbook", "run", str(book), "--var", f"host={sshd.url}",
                      "--var", f"known={unknown}", "--state", str(tmp_path / "st2"))
    assert refused.code == 3 and "--accept-new-host-key" in refused.stderr


def test_urls_with_a_password_reach_the_child_through_its_environment() -> None:
    from migrate.orchestrate.runner import _urls_to_env

    params = {"source": "redis://:s3cr3t@10.0.0.1:6379", "target": "redis://10.0.0.2:6379",
              "to": "valkey"}
    argv = ["sync", *to_args(params)]
    child_argv, env = _urls_to_env("sync", params, argv)
    assert "s3cr3t" not in " ".join(child_argv)
    assert "--target" in child_argv  # nothing secret in it: stays on the command line
    assert env is not None and env["KVMIGRATE_SOURCE_URL"] == params["source"]
    assert _urls_to_env("rdb inspect", {"source": params["source"]}, ["x"]) == (["x"], None)


def test_dragonfly_live_playbook_under_a_failover_writer(dragonfly_installed: object,
                                                         lab: Fleet, tmp_path: Path) -> None:
    """redis-to-dragonfly-live end to end into a real Dragonfly: auto picks replica mode
    (the only one that sees Dragonfly refuse a write), cut over under a writer that fails
    over on NOREPLICAS; every acknowledged write is on Dragonfly."""
    source, target = lab.start("redis-7.0"), lab.start("dragonfly")
    seed(source.endpoint, keys=3000, profile="strings")
    writer = FailoverWriter(source, target)
    thread = writer.start()
    time.sleep(0.3)
    result = run_cli("playbook", "run", "redis-to-dragonfly-live", "--var",
                     f"source={source.url}", "--var", f"target={target.url}", "--var",
                     f"state={tmp_path / 'st'}", "--var", "max_pause_ms=1500", "--yes")
    time.sleep(0.3)
    writer.stop.set()
    thread.join(10)
    assert result.code == 0, result.output[-3000:]
    _no_acknowledged_write_lost(writer, source, target, tmp_path / "st" / "sync")
    sync_ledger = json.loads((tmp_path / "st" / "sync" / "ledger.json").read_text())
    assert sync_ledger["run"]["mode"] == "replica"


def _no_acknowledged_write_lost(writer: FailoverWriter, source: object, target: object,
                                state: Path) -> None:
    """The cut-over paused writes for less than its bound, every write acknowledged by
    either server is on the new primary, and the old one refuses writes (fenced)."""
    cut = json.loads((state / "cutover.json").read_text())
    assert cut["ok"] and 0 < cut["paused_ms"] < 1500
    old = [a for a in writer.acks if a.server == "old"]
    new = [a for a in writer.acks if a.server == "new"]
    assert old and new
    values = target.client().mget([a.key for a in writer.acks])  # type: ignore[attr-defined]
    lost = [a.key for a, v in zip(writer.acks, values, strict=True) if v != str(a.value).encode()]
    assert not lost, lost[:10]
    assert max(a.at for a in old) < cut["promoted_at"]
    with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
        source.client().set("late", 1)  # type: ignore[attr-defined]
