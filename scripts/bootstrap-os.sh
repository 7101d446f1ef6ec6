#!/usr/bin/env bash
# Install the operating-system packages kvmigrate's setup, tests and demo need, if missing:
# python3 with venv and headers, a C compiler, dpkg-deb and apt-get (the lab), ssh-keygen and sshd (remote-step tests).
# Idempotent; uses sudo when not root. Debian 12 and 13.
set -euo pipefail

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
$sudo apt-get update -q >/dev/null
$sudo apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
