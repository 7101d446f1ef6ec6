#!/usr/bin/env bash
# The Dragonfly leg of the demo: a Redis 7.0 source moved to a real Dragonfly on lab servers.
# Run through `make demo-dragonfly`. Dragonfly has no Debian package: the lab takes its
# official release, or the file KVMIGRATE_DRAGONFLY_FROM names (docs/lab.md).
set -euo pipefail

KEYS="${DEMO_KEYS:-100000}"
WORK="${DEMO_DIR:-.kvmigrate/demo-dragonfly}"
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" | sed -E 's#(rediss?://)[^@ ]*@#\1***@#g'; "$@"; }

cleanup() { for name in demo-df-source demo-df-target; do
              kvmigrate lab down "$name" >/dev/null 2>&1 || true; done; }
# A demo that fails stops its servers; one that succeeds leaves them for you to try.
finished=no
trap '[ "$finished" = yes ] || cleanup' EXIT
cleanup
rm -rf "$WORK"
mkdir -p "$WORK"

say "Install Dragonfly into the lab (its release, checked; or KVMIGRATE_DRAGONFLY_FROM)"
run kvmigrate lab install dragonfly
say "Start a Redis 7.0 source (with a password) and an empty Dragonfly target"
run kvmigrate lab up demo-df-source --server redis-7.0 --password demo-secret
run kvmigrate lab up demo-df-target --server dragonfly
say "Fill the source with ${KEYS} keys of every type and encoding"
run kvmigrate lab seed demo-df-source --keys "$KEYS"
SOURCE=$(kvmigrate lab url demo-df-source)
TARGET=$(kvmigrate lab url demo-df-target)

say "1. Preflight against the live Dragonfly: what would break? (read-only)"
run kvmigrate preflight --source "$SOURCE" --target "$TARGET" --to dragonfly || true

say "2. Convert the source's live configuration to a Dragonfly flagfile"
run kvmigrate convert-config --from-server "$SOURCE" --to dragonfly -o "$WORK/dragonfly.flags" || true

say "3. Sync: auto picks replica mode for Dragonfly (every refused write stops the sync)"
run kvmigrate sync --source "$SOURCE" --target "$TARGET" --to dragonfly --state "$WORK/sync"

say "4. Verify every key: values, TTLs, streams, counts per database"
run kvmigrate verify --source "$SOURCE" --target "$TARGET" --full

say "Done: the Dragonfly server holds a verified copy. The servers keep running for you to try
    kvmigrate on (\`. .venv/bin/activate\`, then \`kvmigrate lab status\`); stop them with:
    kvmigrate lab down demo-df-source && kvmigrate lab down demo-df-target"
run kvmigrate lab status
finished=yes
