"""``make demo`` (scripts/demo.sh) ends with its servers running and says how to stop them
(issue 18: a trap stopped them right after showing them "running", before the README tells
the user to try kvmigrate on them)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import run_cli

REPO = Path(__file__).resolve().parent.parent


def test_demo_leaves_its_servers_running_and_prints_how_to_stop_them(
        isolated_lab_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PYTHONPATH": str(REPO), "DEMO_KEYS": "2000", "DEMO_DIR": str(tmp_path / "demo"),
           "COLUMNS": "80", "NO_COLOR": "1"}
    proc = subprocess.run([str(REPO / "scripts" / "demo.sh")], env=env, capture_output=True,
                          text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    tail = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout).rstrip().splitlines()[-1]
    assert tail.strip() == "kvmigrate lab down demo-source && kvmigrate lab down demo-target"
    status = json.loads(run_cli("lab", "status", "--format", "json").stdout)
    assert {r["name"]: r["state"] for r in status} == {"demo-source": "running",
                                                       "demo-target": "running"}
    stop = subprocess.run(tail.strip(), shell=True, env=env, capture_output=True, text=True,
                          timeout=60)
    assert stop.returncode == 0, stop.stderr
    assert json.loads(run_cli("lab", "status", "--format", "json").stdout) == []
