"""Dragonfly in the lab: installed from a release tarball given with --from, or from a release
API (served here on loopback) whose published SHA-256 must match; started with its own flags
and --noversion_check; lab up / status / url work for it as for the others."""

from __future__ import annotations

import hashlib
import http.server
import json
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from migrate.lab import dragonfly, install
from migrate.lab.fleet import Fleet
from tests.helpers import run_cli


@pytest.fixture
def release_tarball(dragonfly_installed: install.Installed, tmp_path: Path) -> Path:
    """A tarball shaped like Dragonfly's release (dragonfly-ARCH plus LICENSE.md)."""
    arch = dragonfly._arch()
    tarball = tmp_path / f"dragonfly-{arch}.tar.gz"
    (tmp_path / "LICENSE.md").write_text("license\n")
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(dragonfly_installed.binary, arcname=f"dragonfly-{arch}")
        tar.add(tmp_path / "LICENSE.md", arcname="LICENSE.md")
    return tarball


@pytest.fixture
def private_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                installed_specs: object) -> Path:
    """An empty lab cache (sharing the apt downloads, not the installed servers)."""
    from migrate.lab import paths

    real_apt = paths.apt_dir()
    lab_dir = tmp_path / "lab"
    lab_dir.mkdir()
    (lab_dir / "apt").symlink_to(real_apt)
    monkeypatch.setenv("KVMIGRATE_LAB_DIR", str(lab_dir))
    return lab_dir


def test_install_from_a_release_tarball(private_lab: Path, release_tarball: Path,
                                        dragonfly_installed: install.Installed) -> None:
    res = run_cli("lab", "install", "dragonfly", "--from", str(release_tarball))
    assert res.code == 0, res.output
    record = install.installed("dragonfly")
    assert record is not None and record.version == dragonfly_installed.version
    assert Path(record.binary).is_relative_to(private_lab)
    again = run_cli("lab", "install", "dragonfly", "--from", "/nonexistent")  # cached: kept
    assert again.code == 0, again.output
    bad = private_lab / "not-a-release"
    bad.write_text("hello")
    res = run_cli("lab", "install", "dragonfly", "--force", "--from", str(bad))
    assert res.code == 2
    assert res.stderr.strip().splitlines()[-1] == (
        f"kvmigrate: error: {bad}: neither a Dragonfly release tarball nor a binary")
    assert install.installed("dragonfly") is not None  # a failed install leaves the old one


class _Releases(http.server.BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        body = self.files.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def releases(release_tarball: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Releases)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    data = release_tarball.read_bytes()
    files = {f"/assets/{release_tarball.name}": data}
    files[f"/releases/{dragonfly.VERSION}"] = json.dumps({"assets": [{
        "name": release_tarball.name, "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
        "browser_download_url": f"{base}/assets/{release_tarball.name}"}]}).encode()
    _Releases.files = files
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{base}/releases", files
    finally:
        server.shutdown()


def test_download_is_checked_against_the_published_digest(
        private_lab: Path, releases: tuple[str, dict[str, bytes]]) -> None:
    base, files = releases
    env = {dragonfly.ENV_RELEASES: base, dragonfly.ENV_FROM: ""}
    good = dict(files)
    name = next(k for k in files if k.startswith("/assets/"))
    files[name] = good[name][:-1] + bytes([good[name][-1] ^ 1])  # one bit off
    res = run_cli("lab", "install", "dragonfly", env=env)
    assert res.code == 4
    assert "does not match the published sha256:" in res.stderr
    assert install.installed("dragonfly") is None  # nothing half-installed
    files[name] = good[name]
    res = run_cli("lab", "install", "dragonfly", env=env)
    assert res.code == 0, res.output
    assert install.installed("dragonfly") is not None


def test_lab_up_status_url_and_a_real_client(dragonfly_installed: install.Installed,
                                             isolated_lab_dir: Path) -> None:
    res = run_cli("lab", "up", "df", "--server", "dragonfly", "--password", "pw-df")
    assert res.code == 0, res.output
    url = run_cli("lab", "url", "df").stdout.strip()
    status = run_cli("lab", "status", "--format", "json")
    assert status.code == 0, status.output
    [row] = [r for r in json.loads(status.stdout) if r["name"] == "df"]
    assert row["server"] == "dragonfly" and row["version"] == dragonfly_installed.version
    import redis

    client = redis.Redis.from_url(url)
    assert client.ping()
    info = client.info("server")
    assert str(info["dragonfly_version"]) == f"df-v{dragonfly_installed.version}"
    argv = Path(f"/proc/{row['pid']}/cmdline").read_bytes().split(b"\0")
    assert b"--noversion_check" in argv
    assert run_cli("lab", "down", "df").code == 0


def test_fleet_start_and_emulated_cluster_mode(dragonfly_installed: install.Installed,
                                               lab: Fleet) -> None:
    server = lab.start("dragonfly", extra_args=["--cluster_mode=emulated"])
    client = server.client()
    client.set("k", "v")
    assert client.get("k") == b"v"
    assert client.execute_command("CLUSTER", "INFO")  # answers as a one-node cluster
