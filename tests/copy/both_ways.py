"""The differential behind the copy tests: every corpus file a target may load itself,
copied into it (whatever path the copy takes) and key by key into a second server of the
same kind; both copies must end alike."""

from __future__ import annotations

import json
from collections.abc import Callable

from migrate.apply.target import Target
from migrate.lab.server import ServerProcess
from migrate.proxy.fileload import file_refusal
from migrate.serverinfo import identify
from tests.conftest import TESTDATA
from tests.helpers import run_cli


def copy_corpus_both_ways(fast: ServerProcess, slow: ServerProcess,
                          after_each: Callable[[str], None],
                          same: Callable[[], list[str]]) -> dict[str, str]:
    """Each file's path on ``fast`` (files both copies refused are left out);
    ``after_each(name)`` checks ``fast`` after its copy; ``same()`` lists the differences
    between the two servers."""
    target = Target(identify(fast.client().info("server")))
    files = [f for f in sorted(TESTDATA.rglob("*.rdb")) if file_refusal(f, target) is None]
    assert len(files) >= 10
    paths = {}
    for f in files:
        a = run_cli("copy", "--from-rdb", str(f), "--target", fast.url, "--flush-target",
                    "--format", "json")
        b = run_cli("copy", "--from-rdb", str(f), "--target", slow.url, "--flush-target",
                    "--record-by-record", "--format", "json")
        assert fast.client().ping(), f.name  # up
        after_each(f.name)
        assert (a.code == 0) == (b.code == 0), (f.name, a.output, b.output)
        if a.code == 0:
            paths[f.name] = json.loads(a.stdout)["path"]
            assert same() == [], f.name
    return paths
