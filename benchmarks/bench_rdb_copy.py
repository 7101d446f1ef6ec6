"""Copy a 1,000,000-key mixed RDB into Valkey 8.0 with `kvmigrate copy --from-rdb`, against
Valkey 8.0 loading the same file natively at startup; times, ratio, kvmigrate's peak RSS
(aim: within 3x the native load, under 200 MB)."""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.rdbfile import KEYS, WRITER, mixed_rdb, timed
from migrate.lab.fleet import Fleet


def run() -> None:
    path = mixed_rdb()
    with tempfile.TemporaryDirectory() as tmp, Fleet(Path(tmp)) as fleet:
        native_dir = Path(tmp) / "native"
        native_dir.mkdir()
        shutil.copy(path, native_dir / "dump.rdb")
        start = time.perf_counter()
        native = fleet.start(WRITER, extra_args=["--dir", str(native_dir)])
        native_wall = time.perf_counter() - start
        assert native.client(0).dbsize() > 0
        log = Path(native.log_path).read_text()
        m = re.search(r"DB loaded from disk: ([\d.]+) seconds", log)
        native_load = float(m.group(1)) if m else native_wall
        target = fleet.start(WRITER)
        t, rss, out, cpu = timed([sys.executable, "-m", "migrate", "copy", "--from-rdb",
                                  str(path), "--target", target.url, "--format", "json"])
        report = json.loads(out)
        keys = sum(target.client(db).dbsize() for db in range(3))
        # the cached file ages: keys whose TTL has passed since it was written are skipped
        assert keys == report["keys"] == KEYS - report["expired_skipped"], (keys, report)
    print(f"file: {path.stat().st_size / 2**20:.0f} MiB, {KEYS:,} keys "
          f"({report['expired_skipped']:,} expired since it was written), target {WRITER}")
    print(f"native load at startup: {native_load:.2f} s (server start to ready "
          f"{native_wall:.2f} s)")
    print(f"kvmigrate copy: {t:.1f} s wall ({KEYS / t:,.0f} keys/s), {cpu:.1f} s CPU in "
          f"kvmigrate, peak RSS {rss:.0f} MiB")
    print(f"copy / native load = {t / native_load:.1f}x (aim 3x); RSS / 200 MB bound = "
          f"{rss / 200:.2f}")
