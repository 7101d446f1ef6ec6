"""Run the every-write matrix on the lab's real servers and record what became of each write
command in checks/data/write_matrix.json, then regenerate the docs made from it:

    .venv/bin/python scripts/gen_write_matrix.py            # run it (about 5 minutes)
    .venv/bin/python scripts/gen_write_matrix.py --from DIR # results of a run made with
                                                            # KVMIGRATE_MATRIX_OUT=DIR

Cases that did not run (no Dragonfly in the lab) keep their recorded outcome.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from migrate.sync.write_matrix import MATRIX_FILE  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, help="results of an earlier run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = args.source or Path(tmp)
        if args.source is None:
            env = {**os.environ, "KVMIGRATE_MATRIX_OUT": str(results)}
            subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "-n", "2", "tests/sync/test_write_matrix.py"], cwd=REPO, env=env,
                           check=True)
        old = json.loads(MATRIX_FILE.read_text())["cases"] if MATRIX_FILE.exists() else {}
        cases = {**old}
        for path in sorted(results.glob("*.json")):
            cases[path.stem] = json.loads(path.read_text())
    MATRIX_FILE.write_text(json.dumps(
        {"about": "what became of each write command per source, target and sync mode, "
                  "from tests/sync/test_write_matrix.py on real servers; regenerate with "
                  "scripts/gen_write_matrix.py", "cases": dict(sorted(cases.items()))},
        indent=1, sort_keys=True) + "\n")
    print(f"wrote {MATRIX_FILE.relative_to(REPO)}: {len(cases)} cases")
    subprocess.run([sys.executable, "scripts/gen_docs.py"], cwd=REPO, check=True)


if __name__ == "__main__":
    main()
