#!/usr/bin/env bash
# The newcomer's first taste of kvmigrate: the whole flow on lab servers, from preflight to
# cut-over. Run through `make demo`, which installs kvmigrate and the lab servers first.
set -euo pipefail

KEYS="${DEMO_KEYS:-100000}"
WORK="${DEMO_DIR:-.kvmigrate/demo}"
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" | sed -E 's#(rediss?://)[^@ ]*@#\1***@#g'; "$@"; }

cleanup() { kvmigrate lab down demo-source >/dev/null 2>&1 || true
            kvmigrate lab down demo-target >/dev/null 2>&1 || true; }
# A demo that fails stops its servers; one that succeeds leaves them for you to try.
finished=no
trap '[ "$finished" = yes ] || cleanup' EXIT
cleanup
rm -rf "$WORK"
mkdir -p "$WORK"

say "Start a Redis 7.0 source (with a password) and an empty Valkey 8.0 target"
run kvmigrate lab up demo-source --server redis-7.0 --password demo-secret
run kvmigrate lab up demo-target --server valkey-8.0
say "Fill the source with ${KEYS} keys of every type and encoding"
run kvmigrate lab seed demo-source --keys "$KEYS"
SOURCE=$(kvmigrate lab url demo-source)
TARGET=$(kvmigrate lab url demo-target)

say "1. Preflight: what would break on Valkey 8.0? (read-only; exit 1 only on blockers)"
run kvmigrate preflight --source "$SOURCE" --target "$TARGET" --to valkey

say "2. The change-review report for the change board (a dry run: nothing changes)"
run kvmigrate playbook run redis-to-valkey-live --var "source=$SOURCE" --var "target=$TARGET" \
    --var "state=$WORK/live" --dry-run --report "$WORK/change-review.md" 2>/dev/null
echo "report written to $WORK/change-review.md ($(wc -l < "$WORK/change-review.md") lines)"

say "3. Convert the source's live configuration to a valkey.conf"
run kvmigrate convert-config --from-server "$SOURCE" --to valkey -o "$WORK/valkey.conf" || true

say "4. Sync: the target becomes a live copy of the source"
run kvmigrate sync --source "$SOURCE" --target "$TARGET" --to valkey --state "$WORK/sync"

say "5. Verify every key: values, TTLs, stream groups, counts per database"
run kvmigrate verify --source "$SOURCE" --target "$TARGET" --full

say "6. Cut over: bounded write pause, catch-up, promote the target, fence the source"
run kvmigrate cutover --state "$WORK/sync" --source "$SOURCE" --target "$TARGET" --yes

say "7. The way back, rehearsed: Valkey 8.0 writes RDB 11, which Redis 7.0 cannot load, so the
    old primary replicates from kvmigrate, which rewrites the RDB for it (the logical path)"
run kvmigrate rollback --state "$WORK/sync" --source "$SOURCE" --target "$TARGET" --dry-run
run kvmigrate rollback --state "$WORK/sync" --source "$SOURCE" --target "$TARGET" --yes

say "Done: migrated, verified, cut over and rolled back; Redis is the primary again and the
    Valkey server refuses writes (NOREPLICAS) until the next attempt."
run kvmigrate lab status
finished=yes
say "The servers keep running for you to try kvmigrate on (\`. .venv/bin/activate\`, then
    \`kvmigrate lab url demo-source\`); stop them with:
    kvmigrate lab down demo-source && kvmigrate lab down demo-target"
