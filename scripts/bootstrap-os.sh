#!/usr/bin/env bash
# Install the operating-system packages kvmigrate's setup, tests and demo need, if missing:
# python3 with venv and headers, a C compiler, dpkg-deb and apt-get (the lab), ssh-keygen and sshd (remote-step tests),
# chromium (the report test renders the HTML report in a headless browser).
# Idempotent; uses sudo when not root. Debian 12 and 13.
set -euo pipefail

# Another apt or dpkg (unattended-upgrades on a fresh machine, a user's install) may hold the
# package manager's locks: wait for them, saying what we wait for, up to a bounded time.
LOCK_TIMEOUT="${KVMIGRATE_APT_LOCK_TIMEOUT:-600}"
LOCKS="${KVMIGRATE_APT_LOCKS:-/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock}"

wait_for_apt_locks() {
    # dpkg and apt hold fcntl locks: test each with a non-blocking lockf, released at once.
    python3 - "$LOCK_TIMEOUT" $LOCKS <<'PY' || return 1
import errno, fcntl, os, sys, time
timeout, locks = float(sys.argv[1]), sys.argv[2:]
deadline, told = time.monotonic() + timeout, False
while True:
    held = []
    for path in locks:
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            continue  # no such lock file (or not ours to open): nothing to wait for
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                held.append(path)
        finally:
            os.close(fd)
    if not held:
        if told:
            print("kvmigrate setup: the package manager is free", file=sys.stderr)
        sys.exit(0)
    if time.monotonic() >= deadline:
        print(f"kvmigrate setup: another apt/dpkg process still holds {held[0]} after "
              f"{timeout:.0f} s; let it finish (or stop it), then run this again "
              "(KVMIGRATE_APT_LOCK_TIMEOUT sets the wait)", file=sys.stderr)
        sys.exit(1)
    if not told:
        print(f"kvmigrate setup: waiting for another apt/dpkg process (it holds {held[0]}; "
              f"unattended-upgrades does on a fresh machine), up to {timeout:.0f} s",
              file=sys.stderr)
        told = True
    time.sleep(1)
PY
}

if [ "${1:-}" = "--wait-for-apt-locks" ]; then  # used by tests
    wait_for_apt_locks
    exit $?
fi

need=()
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
command -v python3 >/dev/null || need+=(python3)
# python-lzf (the RDB reader's LZF codec) builds from source: it needs a C compiler and headers.
python3 -c 'import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null || need+=(python3-dev)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v dpkg-deb >/dev/null || need+=(dpkg)
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
# the report test opens `kvmigrate report --format html` in headless Chromium (tests/report/)
[ -x /usr/bin/chromium ] || need+=(chromium)

if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then
        sudo="sudo"
    else
        echo "kvmigrate setup needs these packages: ${need[*]} (run as root: apt-get install ${need[*]})" >&2
        exit 1
    fi
fi
echo "installing OS packages: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if command -v python3 >/dev/null; then
    wait_for_apt_locks || exit 1
fi
$sudo apt-get -o DPkg::Lock::Timeout="$LOCK_TIMEOUT" update -q >/dev/null
$sudo apt-get -o DPkg::Lock::Timeout="$LOCK_TIMEOUT" install -y -q --no-install-recommends \
    "${need[@]}" >/dev/null
