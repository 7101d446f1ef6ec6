"""Produce docs/runbooks/examples/<playbook>.dry-run.md with the tool itself: lab servers
(a seeded Redis 7.0 source with a password, an empty Valkey 8.0 target), then
`kvmigrate playbook run NAME --dry-run --report FILE` for every built-in playbook.

Run after `make lab`: `.venv/bin/python scripts/gen_runbook_examples.py`.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from migrate.lab.fleet import Fleet  # noqa: E402
from migrate.lab.seed import seed  # noqa: E402
from migrate.orchestrate.playbook import available  # noqa: E402


def main() -> None:
    out_dir = REPO / "docs" / "runbooks" / "examples"
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, Fleet(Path(tmp)) as fleet:
        source = fleet.start("redis-7.0", password="example-password")
        target = fleet.start("valkey-8.0", password="example-password")
        seed(source.endpoint, keys=20000)
        for path in available():
            name = path.stem
            report = out_dir / f"{name}.dry-run.md"
            args = ["--var", f"source={source.url}", "--var", f"target={target.url}"]
            if name == "rollback":
                args += ["--var", f"state={tmp}/state/sync"]
            else:
                args += ["--var", f"state={tmp}/state"]
            proc = subprocess.run([sys.executable, "-m", "migrate", "playbook", "run", name,
                                   *args, "--dry-run", "--report", str(report)],
                                  capture_output=True, text=True, cwd=REPO)
            print(f"{name}: exit {proc.returncode}, {report.relative_to(REPO)}")
            report.with_suffix(".json").unlink(missing_ok=True)
            text = report.read_text().replace(tmp, "/srv/kvmigrate")
            report.write_text(text)


if __name__ == "__main__":
    main()
