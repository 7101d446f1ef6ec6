"""``python -m benchmarks``: the performance table of issue 17 (docs/performance.md), every
figure measured side by side in one run. ``python -m benchmarks NAME ...`` runs the named
older benchmarks (bench_NAME.py) instead."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

from benchmarks import table


def _named(names: list[str]) -> None:
    here = Path(__file__).parent
    known = sorted(m.name for m in pkgutil.iter_modules([str(here)])
                   if m.name.startswith("bench_"))
    for name in (f"bench_{n.removeprefix('bench_')}" for n in names):
        if name not in known:
            sys.exit(f"unknown benchmark {name}; known: {', '.join(known)}")
        print(f"== {name}")
        importlib.import_module(f"benchmarks.{name}").run()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help="older benchmarks to run instead of the "
                        "table (bench_NAME.py)")
    parser.add_argument("--keys", type=int, default=1_000_000,
                        help="keys seeded into the source (default 1,000,000)")
    parser.add_argument("--redisshake", metavar="PATH",
                        help="a RedisShake v4 binary to measure beside kvmigrate")
    parser.add_argument("--markdown", action="store_true",
                        help="print the table as Markdown (progress goes to stderr)")
    parser.add_argument("--rows", default=",".join(table.DEFAULT_ROWS),
                        help=f"rows to measure (default: {','.join(table.DEFAULT_ROWS)}; "
                        "also: big-string,big-hash: one --big-key-mib key, peak RSS)")
    parser.add_argument("--big-key-mib", type=int, default=500, metavar="MIB",
                        help="size of the big-string / big-hash key (default 500)")
    args = parser.parse_args(argv)
    if args.names:
        _named(args.names)
        return
    rows = tuple(r for r in args.rows.split(",") if r)
    unknown = [r for r in rows if r not in table.ROWS]
    if unknown:
        parser.error(f"unknown rows {', '.join(unknown)}; known: {', '.join(table.ROWS)}")
    if args.keys < 1:
        parser.error("--keys must be 1 or more")
    if args.big_key_mib < 1:
        parser.error("--big-key-mib must be 1 or more")
    table.run(args.keys, redisshake=args.redisshake, as_markdown=args.markdown, only=rows,
              big_mib=args.big_key_mib)


if __name__ == "__main__":
    main(sys.argv[1:])
