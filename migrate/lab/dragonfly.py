"""Dragonfly in the lab. No Debian, PyPI or npm package ships a Dragonfly server, so
``kvmigrate lab install dragonfly`` takes, in this order:

1. a Dragonfly already in the lab cache (used as it is);
2. a local release tarball (``dragonfly-<arch>.tar.gz``) or binary, named by ``--from PATH``
   or ``KVMIGRATE_DRAGONFLY_FROM`` (machines without internet access);
3. the official release for this machine's architecture from Dragonfly's GitHub releases,
   checked against the SHA-256 digest GitHub publishes with each asset
   (``KVMIGRATE_DRAGONFLY_RELEASES`` names another release API, e.g. a mirror).

A binary that needs a newer glibc than the machine has runs through Debian 13's loader and
libraries (unpacked into the lab cache, like the other specs); every start passes
``--noversion_check`` so Dragonfly never calls its vendor's version server.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import asdict
from pathlib import Path

from migrate.errors import LabError, UsageError
from migrate.lab import install, paths
from migrate.lab.install import Installed, Progress

SPEC = "dragonfly"
VERSION = "v1.40.1"  # the release the lab is tested with
ENV_FROM = "KVMIGRATE_DRAGONFLY_FROM"
ENV_RELEASES = "KVMIGRATE_DRAGONFLY_RELEASES"
RELEASES = "https://api.github.com/repos/dragonflydb/dragonfly/releases/tags"
RUNTIME_SUITE = "trixie"  # whose loader runs a binary too new for the machine's glibc
RUNTIME_PACKAGES = ["libc6", "libgcc-s1", "libstdc++6"]
DOWNLOAD_TIMEOUT_S = 60


def _arch() -> str:
    machine = platform.machine()
    if machine in ("x86_64", "amd64"):
        return "x86_64"
    if machine in ("aarch64", "arm64"):
        return "aarch64"
    raise LabError(f"Dragonfly publishes x86_64 and aarch64 builds, not {machine}")


def _is_elf(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"\x7fELF"


def _extract(source: Path, into: Path) -> Path:
    """The Dragonfly binary from a release tarball, or the file itself if it is one."""
    if tarfile.is_tarfile(source):
        with tarfile.open(source) as tar:
            members = [m for m in tar.getmembers() if m.isfile()
                       and Path(m.name).name.startswith("dragonfly")
                       and "dbgsym" not in m.name and "bench" not in m.name]
            if not members:
                raise UsageError(f"{source}: no dragonfly binary in this tarball",
                                 f"expected dragonfly-{_arch()}.tar.gz from a release")
            target = into / "dragonfly"
            extracted = tar.extractfile(members[0])
            assert extracted is not None  # a regular file (isfile above)
            with extracted as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
        return target
    if not _is_elf(source):
        raise UsageError(f"{source}: neither a Dragonfly release tarball nor a binary")
    target = into / "dragonfly"
    shutil.copyfile(source, target)
    return target


def _download(version: str, into: Path, progress: Progress) -> Path:
    base = os.environ.get(ENV_RELEASES, RELEASES).rstrip("/")
    name = f"dragonfly-{_arch()}.tar.gz"
    try:
        with urllib.request.urlopen(f"{base}/{version}", timeout=DOWNLOAD_TIMEOUT_S) as resp:
            release = json.load(resp)
        asset = next(a for a in release.get("assets", []) if a.get("name") == name)
        digest = str(asset.get("digest") or "")
        if not digest.startswith("sha256:"):
            raise LabError(f"the release {version} publishes no SHA-256 digest for {name}",
                           f"download it yourself and pass --from PATH ({ENV_FROM})")
        progress(f"dragonfly: downloading {name} ({version})")
        target = into / name
        with urllib.request.urlopen(asset["browser_download_url"],
                                    timeout=DOWNLOAD_TIMEOUT_S) as resp, \
                open(target, "wb") as out:
            shutil.copyfileobj(resp, out)
    except StopIteration:
        raise LabError(f"the release {version} has no {name}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise LabError(f"cannot download Dragonfly {version}: {exc}",
                       f"on a machine without internet access pass --from PATH (a "
                       f"{name} or a dragonfly binary), or set {ENV_FROM}") from None
    got = hashlib.sha256(target.read_bytes()).hexdigest()
    if "sha256:" + got != digest:
        raise LabError(f"{name}: SHA-256 {got} does not match the published {digest}",
                       "the download is damaged or not the release: nothing was installed")
    return target


def dragonfly_version(record: Installed) -> str:
    """``dragonfly --version`` -> "1.40.1" (it prints ``dragonfly v1.40.1-<sha>``)."""
    try:
        proc = subprocess.run([*record.argv("dragonfly"), "--version"], capture_output=True,
                              text=True, timeout=30)
    except OSError as exc:
        raise LabError(f"the Dragonfly binary does not run: {exc.strerror or exc}") from None
    found = re.search(r"dragonfly\W+(?:\[[0-9;]*m)?v(\d+\.\d+(?:\.\d+)?)", proc.stdout)
    if proc.returncode == 0 and found:  # "dragonfly v1.40.1-<sha>", maybe in colour
        return found.group(1)
    last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
    raise LabError(f"the Dragonfly binary does not run: {last}")


def install_dragonfly(source: str | None = None, *, version: str = VERSION,
                      progress: Progress = lambda _m: None, force: bool = False) -> Installed:
    """Install Dragonfly into the lab cache (a no-op when one is there already)."""
    if not force and (done := install.installed(SPEC)) is not None:
        return done
    source = source or os.environ.get(ENV_FROM) or None
    target = paths.server_root(SPEC)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{SPEC}-", dir=target.parent))
    try:
        (staging / "bin").mkdir()
        if source:
            given = Path(source).expanduser()
            if not given.is_file():
                raise UsageError(f"--from {source}: no such file")
            progress(f"dragonfly: from {given}")
            binary = _extract(given, staging / "bin")
        else:
            binary = _extract(_download(version, staging, progress), staging / "bin")
        binary.chmod(0o755)
        final = target / "bin" / "dragonfly"
        record = Installed(spec=SPEC, version="", root=str(target), loader=None,
                           library_path=None, binary=str(final))
        try:
            found = dragonfly_version(Installed(**{**asdict(record), "binary": str(binary)}))
        except LabError as exc:
            if "GLIBC" not in str(exc):
                raise
            # built against a newer glibc: run it through Debian 13's loader and libraries
            progress(f"dragonfly: needs a newer glibc; using {RUNTIME_SUITE}'s")
            install.unpack_runtime(RUNTIME_SUITE, RUNTIME_PACKAGES, staging / "root", progress)
            loader = install.find_loader(staging / "root", RUNTIME_SUITE)
            record = Installed(spec=SPEC, version="", root=str(target),
                               loader=str(target / loader.relative_to(staging)),
                               library_path=install.library_path(target / "root"),
                               binary=str(final))
            found = dragonfly_version(Installed(**{
                **asdict(record), "loader": str(loader), "binary": str(binary),
                "library_path": install.library_path(staging / "root")}))
        install.replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    record = Installed(**{**asdict(record), "version": found})
    install.write_manifest(record)
    progress(f"dragonfly: {found} ready")
    return record


def dragonfly_args(*, port: int, host: str, directory: Path, password: str | None,
                   flagfile: Path | None, lab_defaults: bool) -> list[str]:
    """Dragonfly's own flags for a lab server (it takes no redis.conf options)."""
    args = [f"--flagfile={flagfile}"] if flagfile is not None else []
    args += ["--port", str(port), f"--bind={host}", f"--dir={directory}", "--logtostderr",
             "--noversion_check"]
    if lab_defaults:
        args += ["--proactor_threads=2", "--dbfilename=", "--maxmemory=1gb"]
    if password:
        args.append(f"--requirepass={password}")
    return args
