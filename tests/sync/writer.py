"""A writer process for sync tests: every kind of write the issue names, in a loop, until the
stop file appears. ``python tests/sync/writer.py URL STOPFILE COUNTFILE [--no-flush]``"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import redis

SCRIPT = "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('INCR', KEYS[2])"


def main(url: str, stop: Path, count_file: Path, flush: bool) -> None:
    c = redis.Redis.from_url(url, single_connection_client=True)
    i = 0
    for n in range(5):
        c.xadd(f"x:{n}", {"n": -1})
        c.xgroup_create(f"x:{n}", "g0", "0")
    while not stop.exists():
        i += 1
        c.set(f"s:{i % 200}", i, ex=3600)
        c.expire(f"s:{(i + 7) % 200}", 7200)
        c.delete(f"s:{(i + 13) % 200}")
        c.set(f"r:{i % 50}", i)
        c.rename(f"r:{i % 50}", f"rn:{i % 50}")
        c.rpush("l:src", i)
        c.lmove("l:src", "l:dst", "LEFT", "RIGHT")
        c.sadd(f"set:{i % 20}", f"m{i}")
        c.srem(f"set:{i % 20}", f"m{i - 40}")
        c.zadd(f"z:{i % 20}", {f"m{i % 30}": i})
        c.zincrby(f"z:{i % 20}", 1.5, f"m{i % 7}")
        c.hset(f"h:{i % 20}", f"f{i % 40}", i)
        c.hdel(f"h:{i % 20}", f"f{(i + 3) % 40}")
        c.xadd(f"x:{i % 5}", {"n": i})
        got = c.xreadgroup("g0", f"c{i % 3}", {f"x:{i % 5}": ">"}, count=2)
        if got and i % 2:
            c.xack(f"x:{i % 5}", "g0", got[0][1][0][0])
        c.eval(SCRIPT, 2, f"ev:{i % 10}", "ev:count", i)
        with c.pipeline(transaction=True) as tx:  # MULTI/EXEC
            tx.incr("m:ctr")
            tx.lpush("m:list", i)
            tx.ltrim("m:list", 0, 50)
            tx.execute()
        if i % 20 == 0:
            c.execute_command("SELECT", 3)
            c.set(f"d3:{i}", i)
            if flush and i % 200 == 0:
                c.flushdb()
            c.execute_command("SELECT", 0)
        if i % 50 == 0:
            _write_count(count_file, i)
    _write_count(count_file, i)


def _write_count(count_file: Path, i: int) -> None:
    """Replace the count file whole: a test reading it never sees it empty (written in
    place, it is empty between the truncation and the write)."""
    part = count_file.with_name(count_file.name + ".part")
    part.write_text(str(i))
    os.replace(part, count_file)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), "--no-flush" not in sys.argv)
