"""Preflight against a seeded 1,000,000-key Redis 7.0 source: wall time with the default
sample (bound: about 10 s on a 2-core machine) and the load put on the source."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.preflight.session import DEFAULT_SAMPLE

KEYS = 1_000_000
BOUND_S = 10.0


def run() -> None:
    with tempfile.TemporaryDirectory() as tmp, Fleet(Path(tmp)) as fleet:
        source = fleet.start("redis-7.0")
        start = time.perf_counter()
        seed(source.endpoint, keys=KEYS)
        print(f"seeded {KEYS:,} keys in {time.perf_counter() - start:.1f} s")
        client = source.client()
        before = client.info("stats")["total_commands_processed"]
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "migrate", "preflight", "--source",
                               source.url, "--to", "dragonfly", "--format", "json"],
                              capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        after = client.info("stats")["total_commands_processed"]
        if proc.returncode not in (0, 1):
            raise SystemExit(f"preflight failed: {proc.stderr.strip()}")
        import json

        doc = json.loads(proc.stdout)
        sent = doc["source"]["commands_sent"]
        sampled = doc["source"]["sample"]["sampled"]
        print(f"preflight (CLI, default sample {DEFAULT_SAMPLE:,}) of {KEYS:,} keys: "
              f"{elapsed:.2f} s wall, {sampled:,} keys sampled; ratio to the {BOUND_S:.0f} s "
              f"bound: {elapsed / BOUND_S:.2f}")
        print(f"load on the source: {sent:,} commands sent by preflight, "
              f"{after - before - 1:,} commands processed by the server "
              f"({(after - before - 1) / KEYS:.4f} per key in the source)")
