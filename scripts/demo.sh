#!/usr/bin/env bash
# The newcomer's first taste of kvmigrate: the whole flow that exists today, on lab servers.
# Run through `make demo`, which installs kvmigrate and the lab servers first.
set -euo pipefail

KEYS="${DEMO_KEYS:-100000}"
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

cleanup() { kvmigrate lab down demo-source >/dev/null 2>&1 || true
            kvmigrate lab down demo-target >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup

say "Start a Redis 7.0 source and an empty Valkey 8.0 target on this machine"
run kvmigrate lab up demo-source --server redis-7.0
run kvmigrate lab up demo-target --server valkey-8.0

say "Fill the source with ${KEYS} keys of every type and encoding"
run kvmigrate lab seed demo-source --keys "$KEYS"
SOURCE=$(kvmigrate lab url demo-source)
TARGET=$(kvmigrate lab url demo-target)

run kvmigrate lab status

say "Done. The lab servers are stopped on exit; run them yourself with 'kvmigrate lab up'."
echo "source was $SOURCE, target was $TARGET"
