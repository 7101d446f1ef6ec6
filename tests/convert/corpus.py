"""The corpus of tricky redis.conf inputs in tests/convert/cases/<name>/.

Each case has ``redis.conf`` (and any files it includes) and ``case.yaml``: ``about``, and for
bad input ``error`` (the exact message) or ``error_contains``. Good input has expected outputs
``expected.valkey.conf``, ``expected.dragonfly.flags`` and ``expected.<target>.json`` (the
fates and findings, secrets masked). Includes resolve from the case directory.

Regenerate the expected files after an intended change, then review the diff:
``.venv/bin/python -m tests.convert.corpus``
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from migrate.convert import convert, parse_file
from migrate.convert.result import Conversion

CASES = Path(__file__).resolve().parent / "cases"
OUTPUTS = {"valkey": "expected.valkey.conf", "dragonfly": "expected.dragonfly.flags"}


def case_names() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if (p / "case.yaml").is_file())


def spec(name: str) -> dict[str, Any]:
    return yaml.safe_load((CASES / name / "case.yaml").read_text()) or {}


@contextlib.contextmanager
def inside(name: str) -> Iterator[None]:
    """Run in the case directory so paths in messages and outputs are relative."""
    before = Path.cwd()
    os.chdir(CASES / name)
    try:
        yield
    finally:
        os.chdir(before)


def run(name: str, target: str) -> Conversion:
    with inside(name):
        return convert(parse_file("redis.conf", include_base="."), target)


def report(result: Conversion) -> str:
    payload = result.to_dict()
    payload["exit_code"] = int(result.exit_code)
    return json.dumps(payload, indent=2) + "\n"


def regenerate() -> None:
    for name in case_names():
        if "error" in spec(name) or "error_contains" in spec(name):
            continue
        for target, filename in OUTPUTS.items():
            result = run(name, target)
            (CASES / name / filename).write_text(result.text)
            (CASES / name / f"expected.{target}.json").write_text(report(result))
        print(f"regenerated {name}")


if __name__ == "__main__":
    regenerate()
