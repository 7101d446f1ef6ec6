"""Fetch server binaries from Debian's archive into the lab cache, without touching the
machine's own packages: a private apt state (sources list, lists, cache), ``apt-get download``
and ``dpkg -x``. Every server runs through the loader and libraries of its own suite, so the
result is the same on Debian 12 and 13 (see docs/decisions/0002-lab-servers-from-debian.md).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from migrate.errors import LabError, UsageError
from migrate.lab import paths
from migrate.lab.mirror import find_mirror
from migrate.lab.specs import ServerSpec

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
SUITES = ("bookworm", "bookworm-backports", "trixie", "sid")
LISTS_MAX_AGE_S = 24 * 3600
# Libraries a server and its libraries need beyond what the server package's Depends name.
BASE_LIBS = ("libc6", "libgcc-s1", "libstdc++6", "libcap2", "libzstd1", "liblz4-1", "liblzma5",
             "libgcrypt20", "libgpg-error0")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Installed:
    """A server binary ready to run: ``argv(argv0)`` starts it."""

    spec: str
    version: str
    root: str
    loader: str | None
    library_path: str | None
    binary: str

    def argv(self, argv0: str) -> list[str]:
        if self.loader is None:  # a binary the user already had (--binary)
            return [self.binary]
        return [self.loader, "--library-path", self.library_path or "", "--argv0", argv0,
                self.binary]


def _triplet() -> tuple[str, str]:
    machine = platform.machine()
    if machine in ("x86_64", "amd64"):
        return "x86_64-linux-gnu", "ld-linux-x86-64.so.2"
    if machine in ("aarch64", "arm64"):
        return "aarch64-linux-gnu", "ld-linux-aarch64.so.1"
    raise LabError(f"the lab supports x86_64 and aarch64 machines, not {machine}")


class AptCache:
    """apt-get with its own sources list and state under the lab directory."""

    def __init__(self, root: Path):
        self.root = root
        self.sources = root / "sources.list"
        self.lists = root / "lists"
        self.cache = root / "cache"
        self.debs = root / "debs"

    def _opts(self) -> list[str]:
        return [
            f"-oDir::Etc::SourceList={self.sources}",
            "-oDir::Etc::SourceParts=/dev/null",
            f"-oDir::State::Lists={self.lists}",
            f"-oDir::Cache={self.cache}",
            "-oAPT::Sandbox::User=root",
            "-oAcquire::Retries=3",
            "-q",
        ]

    def ensure_lists(self, progress: Progress) -> None:
        stamp = self.root / "lists.stamp"
        mirror = find_mirror()
        sources = "".join(f"deb [signed-by={KEYRING}] {mirror} {suite} main\n"
                          for suite in SUITES)
        fresh = stamp.exists() and time.time() - stamp.stat().st_mtime < LISTS_MAX_AGE_S
        if fresh and self.sources.exists() and self.sources.read_text() == sources:
            return
        if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
            raise LabError("the lab needs apt-get and dpkg (a Debian or Ubuntu machine)",
                           "use --binary PATH to run a server binary you already have")
        for d in (self.lists / "partial", self.cache / "archives" / "partial", self.debs):
            d.mkdir(parents=True, exist_ok=True)
        self.sources.write_text(sources)
        progress(f"updating package lists for {', '.join(SUITES)}")
        proc = subprocess.run(["apt-get", *self._opts(), "update"], capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise LabError(f"apt-get update of the lab's sources failed: {_last_line(proc)}",
                           f"the lab needs to reach the Debian mirror {mirror} (set "
                           "KVMIGRATE_DEBIAN_MIRROR to use another)")
        stamp.touch()

    def download(self, suite: str, packages: list[str]) -> list[Path]:
        """Download ``packages`` from ``suite`` (reusing earlier downloads): two apt calls."""
        wanted = [f"{p}/{suite}" for p in packages]
        proc = subprocess.run(["apt-get", *self._opts(), "download", "--print-uris", *wanted],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise LabError(f"package lookup in suite {suite} failed: {_last_line(proc)}",
                           f"packages asked for: {', '.join(packages)}")
        files = [self.debs / line.split()[1] for line in proc.stdout.splitlines()
                 if line.startswith("'")]
        if len(files) != len(packages):
            raise LabError(f"suite {suite} does not have all of {', '.join(packages)}")
        missing = [w for w, f in zip(wanted, files, strict=True) if not f.exists()]
        if missing:
            self.debs.mkdir(parents=True, exist_ok=True)
            proc = subprocess.run(["apt-get", *self._opts(), "download", *missing],
                                  cwd=self.debs, capture_output=True, text=True)
            if proc.returncode != 0:
                raise LabError(f"download from suite {suite} failed: {_last_line(proc)}",
                               f"packages: {', '.join(m.split('/')[0] for m in missing)}")
        return files


def _last_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("E:")]
    return (errors or lines or ["no output"])[-1].strip()


def _lib_depends(deb: Path) -> list[str]:
    out = subprocess.run(["dpkg-deb", "-f", str(deb), "Depends"], capture_output=True,
                         text=True, check=True).stdout
    names = []
    for clause in out.split(","):
        name = clause.split("|")[0].strip().split(" ")[0].split(":")[0]
        if name.startswith("lib"):
            names.append(name)
    return names


def _resolve_in_root(root: Path, path: Path) -> Path | None:
    """Follow symlinks of ``path`` treating absolute targets as relative to ``root``."""
    for _ in range(10):
        if not path.is_symlink():
            return path if path.is_file() else None
        target = Path(path.readlink())
        path = root / target.relative_to("/") if target.is_absolute() else path.parent / target
    return None


def find_loader(root: Path, suite: str) -> Path:
    """The dynamic loader inside an unpacked libc6 root."""
    triplet, loader_name = _triplet()
    for cand in (f"usr/lib/{triplet}/{loader_name}", f"lib/{triplet}/{loader_name}",
                 f"usr/lib64/{loader_name}", f"lib64/{loader_name}"):
        loader = _resolve_in_root(root, root / cand)
        if loader is not None:
            return loader
    raise LabError(f"no {loader_name} in the unpacked libc6 of {suite}")


def unpack_runtime(suite: str, packages: list[str], root: Path,
                   progress: Progress) -> list[Path]:
    """Download library packages of ``suite`` through the lab's own apt state and unpack them
    into ``root`` (a runtime a binary runs in through that suite's loader)."""
    apt = AptCache(paths.apt_dir())
    apt.ensure_lists(progress)
    debs = apt.download(suite, packages)
    progress(f"unpacking {len(debs)} packages from {suite}")
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, capture_output=True)
    return debs


def library_path(root: Path) -> str:
    triplet, _ = _triplet()
    return f"{root}/lib/{triplet}:{root}/usr/lib/{triplet}"


def replace_dir(staging: Path, target: Path) -> None:
    """Put a fully prepared folder in place of ``target`` (an older install included)."""
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)


def write_manifest(record: Installed) -> None:
    _manifest(record.spec).write_text(json.dumps(asdict(record), indent=2))


def _manifest(spec_name: str) -> Path:
    return paths.server_root(spec_name) / "installed.json"


def installed(spec_name: str) -> Installed | None:
    manifest = _manifest(spec_name)
    if not manifest.exists():
        return None
    data = json.loads(manifest.read_text())
    if not Path(data["binary"]).exists():
        return None
    return Installed(**data)


def install(spec: ServerSpec, progress: Progress = lambda _msg: None,
            force: bool = False) -> Installed:
    """Install ``spec`` into the cache (a no-op when it is there already)."""
    if not force and (done := installed(spec.name)) is not None:
        return done
    _triplet()  # an unsupported machine fails here, before any download
    apt = AptCache(paths.apt_dir())
    apt.ensure_lists(progress)
    progress(f"{spec.name}: downloading {spec.package} from {spec.suite}")
    [server_deb] = apt.download(spec.suite, [spec.package])
    lib_debs = apt.download(spec.lib_suite,
                            list(dict.fromkeys([*_lib_depends(server_deb), *BASE_LIBS])))
    target = paths.server_root(spec.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=target.parent))
    try:
        root = staging / "root"
        root.mkdir()
        progress(f"{spec.name}: unpacking {1 + len(lib_debs)} packages")
        for deb in (server_deb, *lib_debs):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True,
                           capture_output=True)
        loader = find_loader(root, spec.lib_suite)
        binary = root / "usr" / "bin" / spec.binary
        if not binary.exists():
            raise LabError(f"{spec.name}: package {spec.package} from {spec.suite} has no "
                           f"usr/bin/{spec.binary}")
        final_root = target / "root"
        libpath = library_path(final_root)
        record = Installed(spec=spec.name, version="", root=str(final_root),
                           loader=str(final_root / loader.relative_to(root)),
                           library_path=libpath, binary=str(final_root / binary.relative_to(root)))
        replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        version = server_version(record, spec.server_argv0)
    except LabError:
        shutil.rmtree(target, ignore_errors=True)
        raise
    record = Installed(**{**asdict(record), "version": version})
    write_manifest(record)
    progress(f"{spec.name}: {spec.flavor} {version} ready")
    return record


def server_version(record: Installed, argv0: str) -> str:
    """Run ``server --version`` and return the version it prints."""
    try:
        proc = subprocess.run([*record.argv(argv0), "--version"], capture_output=True,
                              text=True, timeout=30)
    except OSError as exc:  # not a program this machine can run
        raise LabError(f"{record.spec}: the server binary does not run: "
                       f"{exc.strerror or exc}") from None
    out = proc.stdout.strip()
    # "Redis server v=7.0.15 sha=..." / "Valkey server v=9.1.2 sha=..."
    for word in out.split():
        if word.startswith("v="):
            return word[2:]
    raise LabError(f"{record.spec}: the server binary does not run: "
                   f"{(proc.stderr.strip() or out or 'no output').splitlines()[-1]}")


def from_binary(path: str) -> tuple[Installed, str]:
    """Wrap a server binary the user already has; returns it and its flavor."""
    binary = Path(path).expanduser().absolute()  # no symlink resolved: argv0 matters
    if not binary.is_file():
        raise UsageError(f"--binary {path}: no such file")
    if not os.access(binary, os.X_OK):
        raise UsageError(f"--binary {path}: not an executable file",
                         "give the path of a redis-server or valkey-server binary")
    # Keep the name the user gave: a redis-server link to redis-check-rdb needs its argv0.
    record = Installed(spec="custom", version="", root=str(binary.parent), loader=None,
                       library_path=None, binary=str(binary))
    version = server_version(record, binary.name)
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout
    flavor = "valkey" if out.lower().startswith("valkey") else "redis"
    return Installed(**{**asdict(record), "version": version}), flavor
