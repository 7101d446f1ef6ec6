"""Config conversion: time to parse and convert the upstream redis.conf (2,300 lines) in
process, and a generated 20,000-directive config with includes, per target; plus the CLI's
wall time for one conversion (dominated by Python start-up)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from migrate.convert import convert, parse_file

REPO = Path(__file__).resolve().parent.parent
# The upstream redis.conf is another project's file: read from KVMIGRATE_TESTDATA, never kept here.
TESTDATA = os.environ.get("KVMIGRATE_TESTDATA", "")
UPSTREAM = Path(TESTDATA) / "redis.conf.upstream"
ROUNDS = 50


def _big_config(directory: Path, directives: int = 20_000, files: int = 20) -> Path:
    per_file = directives // files
    names = ["maxmemory 1gb", "maxclients 1000", "timeout 30", "save 900 1",
             "hash-max-ziplist-entries 128", "rename-command cmd{i}-{j} new{i}-{j}",
             "slave-priority 5", 'requirepass "pw with space"', "notify-keyspace-events Ex",
             "databases 16"]
    for i in range(files):
        lines = [f"# part {i}"] + [names[j % len(names)].format(i=i, j=j)
                                   for j in range(per_file)]
        (directory / f"part{i:02}.conf").write_text("\n".join(lines) + "\n")
    main = directory / "redis.conf"
    main.write_text("include part*.conf\n")
    return main


def run() -> None:
    have_upstream = bool(TESTDATA) and UPSTREAM.is_file()
    if not have_upstream:
        print("upstream redis.conf: not measured (set KVMIGRATE_TESTDATA to the folder that "
              "holds redis.conf.upstream)")
    for target in ("valkey", "dragonfly") if have_upstream else ():
        start = time.perf_counter()
        for _ in range(ROUNDS):
            convert(parse_file(UPSTREAM), target)
        per = (time.perf_counter() - start) / ROUNDS * 1000
        print(f"upstream redis.conf -> {target}: {per:.1f} ms per conversion "
              f"(mean of {ROUNDS})")
    with tempfile.TemporaryDirectory() as tmp:
        big = _big_config(Path(tmp))
        for target in ("valkey", "dragonfly"):
            start = time.perf_counter()
            parse_start = time.perf_counter()
            doc = parse_file(big, include_base=tmp)
            parse_s = time.perf_counter() - parse_start
            result = convert(doc, target)
            total = time.perf_counter() - start
            count = sum(1 for _ in doc.directives())
            print(f"{count:,} directives in 20 included files -> {target}: {total:.2f} s "
                  f"(parse {parse_s:.2f} s; {count / total:,.0f} directives/s; "
                  f"{len(result.findings):,} findings)")
    if not have_upstream:
        return
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "migrate", "convert-config", str(UPSTREAM),
                           "--to", "dragonfly", "--format", "json"], capture_output=True,
                          cwd=REPO)
    wall = time.perf_counter() - start
    print(f"CLI convert-config upstream -> dragonfly --format json: {wall:.2f} s wall "
          f"(exit {proc.returncode})")
