"""The every-write matrix: for each source (Redis 7.0, Redis 8, Valkey 8.0, Valkey 9), target
(Valkey 8.0, 8.1, 9, Dragonfly) and mode the pair allows, every case of the corpus
(tests/sync/write_corpus.py: one per write command of the source's own command table) runs on
the real source while ``sync --follow`` follows it; then the two servers are compared key by
key. Each command's outcome is "arrives" (its keys are equal on both servers) or "stops" (a
loss class the sync refuses: run here with every class allowed, so the refusal is counted
and the run goes on; tests/sync/test_every_write.py proves that without ``--allow-loss`` such
a write stops the sync). Anything else fails, naming the command.

The outcomes are checked against checks/data/write_matrix.json, from which the matrix
section of docs/compatibility.md is generated; after a behaviour change, regenerate both
with ``scripts/gen_write_matrix.py`` (it runs this test with KVMIGRATE_MATRIX_OUT set).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from migrate.lab.fleet import Fleet
from migrate.lab.server import ServerProcess
from migrate.sync.rules import LOSS_CLASSES
from migrate.sync.write_matrix import MATRIX_FILE, case_id, matrix_cases
from tests.sync.write_corpus import cases_for, command_of_key, coverage, run_case
from tests.sync.writes import diff_pairs, follow, stop, wait_applied

SCAN_ARGS = ["--notify-keyspace-events", "KEA"]
# commands that send no keyspace event: scan mode stops on them
# (tests/sync/test_every_write.py::test_what_scan_mode_cannot_see_stops_the_sync)
SCAN_UNSEEN = {"swapdb", "flushdb", "function|load", "function|delete", "function|flush",
               "function|restore"}


def _server_name(server: ServerProcess) -> str:
    return f"{server.flavor} {server.version}"


def _dropped_cases(status: dict[str, Any], cases: list[str]) -> dict[str, str]:
    """{case: loss class} of the writes the sync refused (counted under --allow-loss)."""
    out: dict[str, str] = {}
    for loss in status.get("dropped_keys", []):
        keys = [command_of_key(k.encode()) for k in loss["keys"]]
        command = loss["command"].lower().replace(" ", "|")
        named = [k for k in keys if k in cases] or \
            [c for c in cases if not loss["keys"] and command in (c, c.split("|")[0])]
        for case in named:
            out.setdefault(case, loss["class"])
    return out


def _scan_loss(pairs: list[tuple[Any, Any]]) -> str | None:
    """The loss class of a scan-mode copy's differences, when that is all they are (scan
    mode copies keys, not commands: a refused key shows as what differs)."""
    if all(a and b and a[:3] == b[:3] and a[3] != b[3] for a, b in pairs):
        return "field-ttl"  # the fields arrived without their TTLs
    if all(a and a[0] == "vectorset" and b is None for a, b in pairs):
        return "vector-set"
    counters = ("entries_added", "max_deleted_id")
    if all(a and b and a[0] == b[0] == "stream" and
           {k: v for k, v in a[1].items() if k not in counters} ==
           {k: v for k, v in b[1].items() if k not in counters} for a, b in pairs):
        return "stream-counters"
    return None


def _outcomes(source: ServerProcess, target: ServerProcess, mode: str, cases: list[str],
              status: dict[str, Any], target_nodes: list[ServerProcess] | None = None
              ) -> dict[str, str]:
    by_case: dict[str, list[tuple[Any, Any]]] = {}
    for key, a, b in diff_pairs(source, target, target_nodes):
        name = "function|load" if key == "functions" else command_of_key(key[1])
        by_case.setdefault(name if name in cases else "?", []).append((a, b))
    assert "?" not in by_case, f"keys outside the corpus differ: {by_case['?'][:3]}"
    dropped = _dropped_cases(status, cases)
    out = {}
    for case in cases:
        if case in dropped:
            out[case] = f"stops: {dropped[case]}"
        elif case not in by_case:
            out[case] = "arrives"
        elif mode == "scan" and (loss := _scan_loss(by_case[case])):
            out[case] = f"stops: {loss}"
        else:
            raise AssertionError(f"{case}: differs and no refusal was counted: "
                                 f"{by_case[case][:3]!r:.600}")
    return out


@pytest.mark.parametrize(("source_spec", "target_spec", "mode"), matrix_cases(),
                         ids=[case_id(*c) for c in matrix_cases()])
def test_every_write_command(request: pytest.FixtureRequest, lab: Fleet, tmp_path: Path,
                             source_spec: str, target_spec: str, mode: str) -> None:
    if target_spec == "dragonfly":
        request.getfixturevalue("dragonfly_installed")
    source = lab.start(source_spec, extra_args=SCAN_ARGS if mode == "scan" else None)
    target = lab.start(target_spec)
    server = _server_name(source)
    covered, total, missing = coverage(server)
    print(f"{server}: {covered} of {total} write commands have a case")
    assert not missing, f"write commands of {server} with no case and no exclusion: {missing}"

    cases = {n: c for n, c in cases_for(server).items()
             if not (mode == "scan" and n in SCAN_UNSEEN)}
    extra = ["--to", target.flavor, "--allow-loss", ",".join(LOSS_CLASSES)]
    proc = follow(source, target, tmp_path / "state", *extra,
                  mode="auto" if mode == "native" else mode)
    arrived: AssertionError | None = None
    try:
        for case in cases.values():
            run_case(lambda db: source.client(db=db), case)
        wait_applied(source, target, timeout=60)
    except AssertionError as exc:
        arrived = exc
    finally:
        code, _, stderr = stop(proc)
    assert arrived is None and code == 0, f"{arrived}; the sync said: {stderr[-600:]}"
    status = json.loads((tmp_path / "state.json").read_text())["status"]
    assert status["mode"] == mode
    outcomes = _outcomes(source, target, mode, list(cases), status)
    if mode == "scan":  # not run: each stops a scan-mode sync (the test named above)
        outcomes.update({n: "stops: no keyspace event" for n in cases_for(server)
                         if n in SCAN_UNSEEN})
        outcomes = dict(sorted(outcomes.items()))
    result = {"source": server, "target": _server_name(target), "mode": mode,
              "outcomes": outcomes, "translations": status.get("translations", {})}

    record = os.environ.get("KVMIGRATE_MATRIX_OUT")
    if record:
        Path(record).mkdir(parents=True, exist_ok=True)
        (Path(record) / f"{case_id(source_spec, target_spec, mode)}.json").write_text(
            json.dumps(result, indent=1, sort_keys=True))
        return
    committed = json.loads(MATRIX_FILE.read_text())["cases"].get(
        case_id(source_spec, target_spec, mode))
    assert committed is not None, "not in checks/data/write_matrix.json: run " \
                                  "scripts/gen_write_matrix.py"
    assert outcomes == committed["outcomes"], \
        "the outcomes changed: run scripts/gen_write_matrix.py and review the diff"


# a cluster target has database 0 only: the cases that use others are not run into one
OTHER_DBS = {"move", "copy", "swapdb", "flushdb"}


@pytest.mark.parametrize("source_spec", ["redis-7.0", "valkey-9"])
def test_every_write_command_into_a_cluster(lab: Fleet, lab_cluster: Any, tmp_path: Path,
                                            source_spec: str) -> None:
    """The routed writer: each case's keys share a hash tag, so every command goes to the
    primary of its slot (FUNCTION to every primary)."""
    source = lab.start(source_spec)
    cluster = lab_cluster("valkey-8.0" if source_spec == "redis-7.0" else "valkey-9", shards=3)
    server = _server_name(source)
    cases = {n: c for n, c in cases_for(server).items() if n not in OTHER_DBS}
    extra = ["--to", "valkey", "--allow-loss", ",".join(LOSS_CLASSES)]
    proc = follow(source, cluster, tmp_path / "state", *extra, mode="replica")
    arrived: AssertionError | None = None
    try:
        for case in cases.values():
            run_case(lambda db: source.client(db=db), case)
        wait_applied(source, cluster.nodes[0], timeout=60, cluster=cluster)
    except AssertionError as exc:
        arrived = exc
    finally:
        code, _, stderr = stop(proc)
    assert arrived is None and code == 0, f"{arrived}; the sync said: {stderr[-600:]}"
    status = json.loads((tmp_path / "state.json").read_text())["status"]
    outcomes = _outcomes(source, cluster.nodes[0], "replica", list(cases), status,
                         target_nodes=cluster.nodes)
    assert set(outcomes.values()) == {"arrives"}, \
        {c: o for c, o in outcomes.items() if o != "arrives"}
