"""Capture where each command's keys are, from the servers themselves: ``COMMAND INFO`` of
every Debian lab server (key specifications, Redis 7+ / Valkey), written to
checks/data/key_specs.json, and which commands each flags ``write`` (checks/data/
write_commands.json, the list the every-write test corpus must cover). Run after
`make lab` when a lab server version changes:

    .venv/bin/python scripts/gen_key_specs.py

The cluster router, the Translator's written-keys sample and the key-spec test read it
(migrate/keyspec.py); tests/test_key_specs.py checks it against a live server.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from migrate.keyspec import (  # noqa: E402
    DATA_FILE,
    WRITE_COMMANDS_FILE,
    specs_of_server,
    write_commands_of_server,
)
from migrate.lab.fleet import Fleet  # noqa: E402
from migrate.lab.specs import SPECS  # noqa: E402


def main() -> None:
    servers: dict[str, dict] = {}
    writes: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp, Fleet(Path(tmp)) as fleet:
        for spec in SPECS:
            server = fleet.start(spec)
            servers[f"{server.flavor} {server.version}"] = specs_of_server(server.client())
            writes[f"{server.flavor} {server.version}"] = write_commands_of_server(
                server.client())
            server.stop()
    merged: dict[str, list] = {}
    for table in servers.values():  # a later server's spec of a command wins
        merged.update(table)
    out = {"about": "key specifications from COMMAND INFO of each server; "
                    "regenerate with scripts/gen_key_specs.py",
           "servers": sorted(servers), "commands": dict(sorted(merged.items()))}
    DATA_FILE.write_text(json.dumps(out, indent=0, separators=(",", ":")) + "\n")
    WRITE_COMMANDS_FILE.write_text(json.dumps(
        {"about": "the commands each lab server's COMMAND INFO flags write; regenerate with "
                  "scripts/gen_key_specs.py", "servers": dict(sorted(writes.items()))},
        indent=1) + "\n")
    print(f"wrote {DATA_FILE.relative_to(REPO)}: {len(merged)} commands from "
          f"{', '.join(sorted(servers))}")


if __name__ == "__main__":
    main()
