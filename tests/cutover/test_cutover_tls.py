"""Cut-over over TLS: a running scan-mode sync from a TLS source that requires client
certificates is cut over with the --source-tls-* options, and the clients still on the old
primary list none of kvmigrate's own connections (each one is named with CLIENT SETNAME)."""

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


def test_cutover_of_a_scan_sync_from_a_tls_source(lab: Fleet, pki: Pki, tmp_path: Path) -> None:
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
        without_tls = run_cli("cutover", "--state", str(state), "--yes")
        assert without_tls.code == 3, without_tls.output  # the ledger keeps no TLS files
        result = run_cli("cutover", "--state", str(state), *tls_args("source", source),
                         "--yes", "--format", "json")
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
