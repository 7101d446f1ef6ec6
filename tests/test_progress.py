"""Progress of the long operations (issue 18), on real servers through the real CLI: a total,
a percentage reaching 100 and final figures equal to the real ones, as plain lines when
stderr is not a terminal; within 80 columns, one line per frame, when it is."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import termios
from dataclasses import dataclass
from pathlib import Path

import pytest

from migrate.lab.fleet import Fleet
from migrate.lab.server import ServerProcess
from tests.helpers import Result, run_cli

KEYS = 60_000
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PLAIN = {"COLUMNS": "80"}


@dataclass
class Source:
    server: ServerProcess
    rdb: Path
    keys: int


@pytest.fixture(scope="module")
def source(session_lab: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Source:
    """A Redis 7.0 with 60,000 keys of 120 random bytes: an RDB of about 8 MB."""
    server = session_lab.start("redis-7.0")
    client = server.client()
    pipe = client.pipeline(transaction=False)
    for i in range(KEYS):
        pipe.set(f"key:{i}", os.urandom(120))
        if i % 2000 == 1999:
            pipe.execute()
    pipe.execute()
    client.save()
    rdb = tmp_path_factory.mktemp("progress") / "big.rdb"
    shutil.copy(Path(server.directory) / "dump.rdb", rdb)
    assert rdb.stat().st_size > 4_000_000
    return Source(server, rdb, client.dbsize())


def _lines(res: Result, prefix: str) -> list[str]:
    return [ln for ln in res.stderr.splitlines() if ln.startswith(prefix)]


def _plain_progress(res: Result, prefix: str) -> tuple[list[str], str]:
    """The progress lines of one operation: plain text, each with a total and a percentage;
    the last one at 100%."""
    assert "\x1b" not in res.stderr, res.stderr  # no escape codes in a log
    lines = _lines(res, prefix)
    assert lines, res.stderr
    for line in lines:
        assert re.search(r"[\d.,]+( [kMG]?B)?/~?[\d.,]+( [kMG]?B| keys)? \(\d+%", line), line
    assert "(100%)" in lines[-1] and "done in" in lines[-1], lines
    return lines, lines[-1]


def test_rdb_inspect_of_a_big_file_shows_its_progress(source: Source) -> None:
    res = run_cli("rdb", "inspect", str(source.rdb), "--format", "json", env=PLAIN)
    assert res.code == 0, res.output
    _, last = _plain_progress(res, "reading big.rdb: ")
    size = json.loads(res.stdout)["file_bytes"]
    assert size == source.rdb.stat().st_size
    mb = f"{size / 1e6:,.1f} MB"
    assert last.startswith(f"reading big.rdb: {mb}/{mb} (100%)"), last


def test_verify_full_counts_up_to_the_source_keys(source: Source, lab: Fleet) -> None:
    target = lab.start("valkey-8.1")
    copied = run_cli("copy", "--from-rdb", str(source.rdb), "--target", target.url,
                     "--record-by-record", env=PLAIN)
    assert copied.code == 0, copied.output
    lines, last = _plain_progress(copied, "writing: ")
    assert last.startswith(f"writing: {KEYS:,}/{KEYS:,} keys (100%)"), last
    _, validated = _plain_progress(copied, "validating: ")
    mb = f"{source.rdb.stat().st_size / 1e6:,.1f} MB"
    assert validated.startswith(f"validating: {mb}/{mb} (100%)"), validated

    res = run_cli("verify", "--source", source.server.url, "--target", target.url, "--full",
                  env=PLAIN)
    assert res.code == 0, res.output
    lines, last = _plain_progress(res, "verify: ")
    assert last.startswith(f"verify: {source.keys:,}/{source.keys:,} keys (100%)"), last
    for line in lines[:-1]:  # while running: out of the source's DBSIZE
        assert f"/{source.keys:,} keys" in line, line


def test_a_copy_the_target_loads_itself_shows_both_phases(source: Source, lab: Fleet) -> None:
    target = lab.start("valkey-8.1")
    copied = run_cli("copy", "--from-rdb", str(source.rdb), "--target", target.url, env=PLAIN)
    assert copied.code == 0, copied.output
    assert "path: loaded by the target itself" in copied.stdout, copied.stdout
    mb = f"{source.rdb.stat().st_size / 1e6:,.1f} MB"
    for phase in ("checking", "loading"):  # the checksum, then the walk the target follows
        _, last = _plain_progress(copied, f"{phase}: ")
        assert last.startswith(f"{phase}: {mb}/{mb} (100%)"), last


def _run_in_terminal(*args: str, columns: int = 80) -> tuple[int, str]:
    """The CLI with stderr on a pseudo-terminal of ``columns`` columns: what it drew."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "xterm", "NO_COLOR": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "migrate", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=300), b"".join(chunks).decode(errors="replace")


def test_copy_bar_is_one_line_within_80_columns(source: Source, lab: Fleet) -> None:
    target = lab.start("valkey-8.1")
    code, drawn = _run_in_terminal("copy", "--from-rdb", str(source.rdb), "--target",
                                   target.url, "--record-by-record")
    assert code == 0, drawn[-2000:]
    assert "━" in drawn  # a bar was drawn
    assert "\x1b[1A" not in drawn, drawn[-2000:]  # no cursor-up: every frame is one line
    frames = [piece for piece in re.split(r"[\r\n]", ANSI.sub("", drawn)) if "━" in piece]
    assert frames
    for piece in frames:  # (the line naming the file and the target is as long as they are)
        assert len(piece) <= 80, piece
    assert f"writing: {KEYS:,}/{KEYS:,} keys (100%)" in ANSI.sub("", drawn)


@pytest.mark.parametrize("mode", ["replica", "native"])
def test_sync_lines_carry_totals_and_end_with_the_real_figures(
        source: Source, lab: Fleet, tmp_path: Path, mode: str) -> None:
    target = lab.start("valkey-8.1")
    status_json = tmp_path / "status.json"
    res = run_cli("sync", "--source", source.server.url, "--target", target.url, "--mode",
                  mode, "--state", str(tmp_path / "state"), "--status-json", str(status_json),
                  env=PLAIN)
    assert res.code == 0, res.output
    assert "\x1b" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("phase=")]
    assert any(re.search(r"keys=[\d,]+/60,000", ln) for ln in lines), lines
    assert any("progress=" in ln and "%" in ln for ln in lines), lines
    assert "(100%)" in lines[-1] and f"keys={source.keys:,}/{source.keys:,}" in lines[-1], \
        lines[-1]
    status = json.loads(status_json.read_text())["status"]
    assert status["keys"] == status["keys_total"] == source.keys
    assert status["percent"] == 100
    # the RDB's bytes: all of them at the end (native showed 0 after 16 MB, replica 180 kB)
    if mode == "native" and status["bytes_total"] is None:
        # a diskless transfer announces no size: the bytes the target was seen to read (none
        # when the whole transfer fell between two looks), never claimed as the RDB's size
        assert status["bytes_copied"] >= 0
    else:
        assert status["bytes_copied"] == status["bytes_total"] > 0.5 * source.rdb.stat().st_size
    assert "ops_per_s" not in status or mode != "native"  # native cannot count them
