"""Parse a 1,000,000-key mixed RDB: kvmigrate's reader (every value decoded, CRC64 checked)
against redis-check-rdb and valkey-check-rdb on the same file; times, ratios, peak RSS."""

from __future__ import annotations

import sys

from benchmarks.rdbfile import KEYS, mixed_rdb, timed
from migrate.lab.install import installed

READ = ("import sys; from migrate.rdb import RdbReader, Entry\n"
        "n = 0\n"
        "with open(sys.argv[1], 'rb') as fh:\n"
        "    for r in RdbReader(fh, keep_raw=False).records():\n"
        "        n += isinstance(r, Entry) and r.final\n"
        "print(n)\n")


def run() -> None:
    path = mixed_rdb()
    size = path.stat().st_size
    ours, ours_rss, out, ours_cpu = timed([sys.executable, "-c", READ, str(path)])
    assert int(out) == KEYS, out
    print(f"file: {path.name}, {size / 2**20:.0f} MiB, {KEYS:,} keys")
    print(f"kvmigrate reader: {ours:.1f} s wall, {ours_cpu:.1f} s CPU "
          f"({KEYS / ours_cpu:,.0f} keys/s of CPU), peak RSS {ours_rss:.0f} MiB")
    for spec, tool in (("redis-8", "redis-check-rdb"), ("valkey-8.0", "valkey-check-rdb")):
        record = installed(spec)
        if record is None:
            print(f"{tool}: {spec} not installed")
            continue
        t, rss, _, cpu = timed([*record.argv(tool), str(path)])
        print(f"{tool} ({spec}): {t:.1f} s wall, {cpu:.1f} s CPU, peak RSS {rss:.0f} MiB; "
              f"kvmigrate / {tool}: {ours / t:.1f}x wall, {ours_cpu / cpu:.1f}x CPU")
