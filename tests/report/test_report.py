"""``kvmigrate report`` of a real migration: a replica-mode ``sync --follow`` under writes
(some translated for the target), a cut-over and a rollback, then the report in all three
formats; the HTML page is opened in a real headless Chromium, which must draw the chart."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from migrate.lab.fleet import Fleet
from tests.helpers import run_cli
from tests.report import png

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "report-s3cret-pw"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the headless browser (a missing Chromium fails the test: scripts/bootstrap-os.sh
    installs it)."""
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: run scripts/bootstrap-os.sh " \
                                   "(apt-get install chromium)"
    profile = tmp / "chromium-profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HOME": str(tmp)})


def _migrate(lab: Fleet, tmp_path: Path) -> tuple[Path, int]:
    source = lab.start("redis-8", password=PASSWORD)
    target = lab.start("valkey-8.0")
    pipe = source.client().pipeline(transaction=False)
    for i in range(3000):  # plain keys: Valkey 8.0 has no hash field TTLs to load
        pipe.set(f"k:{i}", f"value-{i}")
        if i % 10 == 0:
            pipe.hset(f"h:{i}", mapping={"a": i, "b": "x" * 40})
    pipe.execute()
    state = tmp_path / "state"
    env = {**os.environ, "NO_COLOR": "1", "KVMIGRATE_SOURCE_URL": source.url}
    sync = subprocess.Popen([sys.executable, "-m", "migrate", "sync", "--target", target.url,
                             "--to", "valkey", "--mode", "replica", "--follow", "--state",
                             str(state)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    stop = threading.Event()
    written = [0]

    def write() -> None:  # Redis 8 replicates HINCRBYFLOAT as HSETEX, which Valkey 8.0 lacks
        client = source.client()
        while not stop.is_set():
            client.set(f"w:{written[0]}", "x" * 200)
            client.hincrbyfloat("counters", f"f{written[0] % 7}", 0.5)
            written[0] += 1
            time.sleep(0.005)

    writer = threading.Thread(target=write, daemon=True)
    try:
        def following() -> bool:
            assert sync.poll() is None, sync.communicate()[1][-3000:]
            return _json(state / "ledger.json").get("status", {}).get("phase") == "follow"

        _wait(following, 120, "the sync to follow")
        writer.start()

        def sampled_while_following() -> bool:
            assert sync.poll() is None, sync.communicate()[1][-3000:]
            samples = _json(state / "timeline.json").get("samples", [])
            return sum(1 for s in samples if s.get("phase") == "follow") >= 4

        _wait(sampled_while_following, 60, "four timeline samples while following")
        stop.set()
        writer.join(10)
        cut = run_cli("cutover", "--state", str(state), "--yes", "--format", "json", env=env)
        assert cut.code == 0, cut.output[-3000:]
        sync.wait(60)
        assert sync.returncode == 0, sync.stderr.read()[-3000:] if sync.stderr else ""
        # and back: Redis 8 loads Valkey 8.0's RDB, so the rollback is native
        back = run_cli("rollback", "--state", str(state), "--yes", "--format", "json", env=env)
        assert back.code == 0, back.output[-3000:]
    finally:
        stop.set()
        if sync.poll() is None:
            sync.kill()
            sync.wait()
    return state, written[0]


def test_report_of_a_sync_and_cutover_in_three_formats(lab: Fleet, tmp_path: Path) -> None:
    state, writes = _migrate(lab, tmp_path)
    timeline = _json(state / "timeline.json")
    assert oct((state / "timeline.json").stat().st_mode & 0o777) == "0o600"
    assert 5 <= len(timeline["samples"]) <= timeline["max_samples"]

    as_json = run_cli("report", "--state", str(state), "--format", "json")
    assert as_json.code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert [p["name"] for p in data["phases"]] == ["prepare", "catch-up", "verify", "follow"]
    assert all(p["status"] == "done" for p in data["phases"])
    assert data["run"]["mode"] == "replica" and data["outcome"] == "done"
    cut = data["cutover"]
    assert cut["ok"] and 0 < cut["paused_ms"] < 2000
    window = cut["pause_window"]
    assert window["start"] < cut["promoted_at"] <= window["end"]
    assert "mismatches" in cut["final_verification"]
    back = data["rollback"]
    assert back["ok"] and back["pause_window"]["start"] > window["end"]
    assert data["commands"]["translated"]["HSETEX"] == writes
    assert data["commands"]["refused_by_target"] == 0
    assert data["verification"]["mismatches"] == 0
    assert data["figures"]["keys"] == 3300
    follow = [s for s in data["timeline"]["samples"] if s.get("phase") == "follow"]
    assert follow and all("lag_bytes" in s and "commands" in s for s in follow)

    md = tmp_path / "report.md"
    written = run_cli("report", "--state", str(state), "-o", str(md))
    assert written.code == 0 and written.stdout == "", written.output
    text = md.read_text()
    assert text.startswith("# Migration report: redis://:***@127.0.0.1:")
    for heading in ("## Summary", "## Timeline", "## Phases", "## Verification",
                    "## Commands translated, dropped or refused", "## Cut-over",
                    "## Rollback"):
        assert f"\n{heading}\n" in text, heading
    assert f"writes paused {cut['paused_ms']:,.1f} ms" in text
    assert re.search(rf"\| HSETEX \| translated \| {writes:,} \| HSET \|", text), text

    page = tmp_path / "report.html"
    done = run_cli("report", "--state", str(state), "--format", "html", "--output", str(page))
    assert done.code == 0, done.output
    html = page.read_text()
    for output in (as_json.stdout, text, html):
        assert PASSWORD not in output
    # self-contained: no scripts, nothing fetched (the SVG namespace is a name, not a fetch)
    assert "<script" not in html.lower()
    assert not re.search(r"""(?:src|href)\s*=|url\(|@import""", html, re.I)
    assert html.count("<svg") == 1 and html.count('class="pause"') == 2

    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<svg" in dom.stdout and "</svg>" in dom.stdout
    assert len(re.findall(r'<polyline class="series"', dom.stdout)) >= 2  # lag, throughput
    assert re.search(r'<rect class="pause"[^>]*width="(\d+\.\d)"', dom.stdout)
    assert "cut-over write pause" in dom.stdout and "rollback write pause" in dom.stdout

    shot = tmp_path / "report.png"
    shown = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1000,1300",
                     page.as_uri())
    assert shown.returncode == 0 and shot.exists(), shown.stderr[-2000:]
    colours = png.colours(shot.read_bytes())
    assert len(colours) > 20, f"a blank page: {len(colours)} colour(s)"
    # the chart's own colours are on screen: the series blue and the shaded pause (orange
    # at 35 % over the panel's grey)
    assert any(r < 60 and 80 < g < 130 and b > 190 for r, g, b in colours), "no series line"
    assert any(r > 240 and 200 < g < 235 and 150 < b < 200 for r, g, b in colours), \
        "no shaded pause"


def test_report_errors_are_one_line(tmp_path: Path) -> None:
    missing = run_cli("report", "--state", str(tmp_path / "none"))
    assert missing.code == 2 and missing.stderr.startswith("kvmigrate: error: no sync ledger")
    bad = run_cli("report", "--state", str(tmp_path), "--format", "pdf")
    assert bad.code == 2 and "unknown --format 'pdf'" in bad.stderr
    assert bad.stderr.count("\n") == 1
