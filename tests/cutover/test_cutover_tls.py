"""Cut-over over TLS: a running scan-mode sync from a TLS source that requires client
certificates is cut over without repeating the --source-tls-* options (the ledger names the
files the sync was started with; options given override them), then rolled back the same way;
the clients still on the old primary list none of kvmigrate's own connections (each one is
named with CLIENT SETNAME)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.lab.tls import Pki, ServerTls
from migrate.verify.runner import VerifyOptions, verify
from tests.helpers import run_cli
from tests.sync.test_tls import tls_args


def test_cutover_of_a_scan_sync_from_a_tls_source(lab: Fleet, pki: Pki, other_pki: Pki,
                                                  tmp_path: Path) -> None:
    source = lab.start("redis-7.0", tls=ServerTls(pki, auth_clients=True),
                       extra_args=["--notify-keyspace-events", "KA"])
    target = lab.start("valkey-9")
    seed(source.endpoint, keys=800, seed_value=11)
    state = tmp_path / "state"
    sync = subprocess.Popen([sys.executable, "-m", "migrate", "sync", "--source", source.url,
                             *tls_args("source", source), "--target", target.url, "--mode",
                             "scan", "--follow", "--state", str(state)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert sync.poll() is None, sync.communicate()[1][-2000:]
            try:
                phase = json.loads((state / "ledger.json").read_text()) \
                    .get("status", {}).get("phase")
            except (OSError, ValueError):
                phase = None
            if phase == "follow":
                break
            assert time.monotonic() < deadline, "the sync did not reach the follow phase"
            time.sleep(0.2)
        named = [c for c in source.client().client_list() if c["name"] == "kvmigrate"]
        assert len(named) >= 2  # the sync's own connections to the source, named
        ledger = (state / "ledger.json").read_text()
        assert json.loads(ledger)["tls"] == {"source": {
            "ca": str(pki.ca_cert), "cert": str(pki.client_cert), "key": str(pki.client_key),
            "insecure": False}}
        assert "PRIVATE KEY" not in ledger and "CERTIFICATE" not in ledger
        # options given replace the recorded files: the wrong CA is refused, nothing done
        wrong = run_cli("cutover", "--state", str(state), "--source-tls-ca",
                        str(other_pki.ca_cert), "--source-tls-cert", str(pki.client_cert),
                        "--source-tls-key", str(pki.client_key), "--yes")
        assert wrong.code == 3, wrong.output
        assert "certificate verify failed" in wrong.stderr.strip().splitlines()[-1]
        assert not (state / "cutover.json").exists()
        result = run_cli("cutover", "--state", str(state), "--yes", "--format", "json")
        assert result.code == 0, result.output[-3000:]
        record = json.loads(result.stdout)
        assert record["ok"] and record["clients_left"] == []
        sync.wait(60)
    finally:
        if sync.poll() is None:
            sync.kill()
            sync.wait()
    assert target.client().info("replication")["role"] == "master"
    assert verify(source.endpoint, target.endpoint, VerifyOptions(full=True)).ok
    target.client().set("written-after-cutover", "1")
    back = run_cli("rollback", "--state", str(state), "--yes", "--format", "json")
    assert back.code == 0, back.output[-3000:]
    assert json.loads(back.stdout)["ok"]
    assert source.client().get("written-after-cutover") == b"1"
    assert source.client().info("replication")["role"] == "master"
