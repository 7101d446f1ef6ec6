"""The ``--state DIR`` ledger: one record that is both the status report and the resume point.

pgcopydb's idea: each phase of a run is recorded with its start, end and counters; the same
record prints the status and decides what a resumed run skips, so the two cannot disagree.
The files of the state folder are declared in :mod:`migrate.state.paths`; a pidfile keeps two
runs out of one folder. A folder created for a run is 0700 and every file the run writes 0600
(customer data).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from migrate.endpoint import Endpoint, TlsSettings
from migrate.errors import KvmError, UsageError
from migrate.state.paths import LEDGER_FILE, StatePaths
from migrate.state.timeline import Timeline

FORMAT = 1


def save_written_keys(path: Path, keys: list[tuple[int, bytes]]) -> None:
    """The written-keys sample, as [db, key-hex] pairs, mode 0600, replaced atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump([[db, key.hex()] for db, key in keys], fh)
    os.replace(tmp, path)


def load_written_keys(path: Path) -> list[tuple[int, bytes]]:
    try:
        return [(int(db), bytes.fromhex(key)) for db, key in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError):
        return []


def private_files() -> None:
    """From now on, what this process creates is private: 0600 files, 0700 folders (a state
    folder holds customer data: spooled RDBs and streams, key names)."""
    os.umask(0o077)


def private_dir(path: Path) -> Path:
    """``path`` made (with its parents) as a private folder, 0700 whatever the umask."""
    private_files()
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if created:
        os.chmod(path, 0o700)
    return path


def remove_spools(root: Path) -> list[Path]:
    """Remove the spools of the run in ``root`` (its own and its shards'); the ones removed."""
    removed = []
    for spool in [StatePaths(root).spool, *StatePaths(root).shard_spools()]:
        if spool.is_dir():
            shutil.rmtree(spool, ignore_errors=True)
            removed.append(spool)
    return removed


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write ``path`` (mode 0600, whatever the umask) through a temporary file and rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a leftover temporary file keeps its mode otherwise
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=2, default=str)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Ledger:
    """Phases, offsets, counters and live status of one run, kept in ``--state DIR``."""

    def __init__(self, paths: StatePaths, data: dict[str, Any]):
        self.paths = paths
        self.data = data
        self._locked = False
        self._mutex = threading.RLock()  # the status thread saves while phases run
        self.timeline = Timeline(paths.timeline)

    # --- opening and locking -------------------------------------------------------------
    @classmethod
    def open(cls, root: Path, *, run: dict[str, Any], resume: bool,
             moved: tuple[str, ...] = ()) -> Ledger:
        """Lock ``root`` and load or start its ledger.

        ``run`` names the run (source, target, mode); a resumed ledger must name the same,
        but for the keys in ``moved`` (the source after a failover, a cluster's shards): those
        take their new values, and the change is kept in the ledger's ``moves``.
        """
        paths = StatePaths(root)
        # A state folder holds customer data (spooled RDBs and streams, key names): what
        # this process writes is private (0600 files, 0700 folders), and a folder it creates
        # for the run is 0700.
        private_dir(root)
        ledger = cls(paths, {})
        ledger._lock()
        try:
            if paths.ledger.exists():
                if not resume:
                    raise UsageError(f"{root} already holds the ledger of a run",
                                     "add --resume to continue it, or pick another --state DIR")
                data = json.loads(paths.ledger.read_text())
                was = data.get("run", {})
                if _without_passwords(_but(was, moved)) != _without_passwords(_but(run, moved)):
                    raise UsageError(f"the ledger in {root} belongs to another run "
                                     f"({_describe(data.get('run', {}))})",
                                     "resume with the same source, target and mode, or pick "
                                     "another --state DIR")
                changed = {k: {"from": was.get(k), "to": run.get(k)} for k in moved
                           if _without_passwords(was).get(k) != _without_passwords(run).get(k)}
                if changed:
                    data.setdefault("moves", []).append({"at": time.time(), **changed})
                    data["run"] = {**was, **{k: run[k] for k in changed if k in run}}
                data["resumed"] = data.get("resumed", 0) + 1
                ledger.timeline = Timeline.load(paths.timeline, keep=True)
            elif resume:
                raise UsageError(f"nothing to resume: {root} has no {LEDGER_FILE}",
                                 "run without --resume to start")
            else:
                data = {"format": FORMAT, "run": run, "created": time.time(), "resumed": 0,
                        "phases": [], "offsets": {}, "counters": {}, "status": {}}
            ledger.data = data
            ledger.save()
        except BaseException:
            ledger.close()
            raise
        return ledger

    def _lock(self) -> None:
        pidfile = self.paths.pidfile
        for _ in range(2):
            try:
                fd = os.open(pidfile, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                text = pidfile.read_text().strip()
                pid = int(text) if text.isdigit() else 0
                if pid and pid != os.getpid() and pid_alive(pid):
                    raise KvmError(f"another kvmigrate (pid {pid}) is using {self.paths.root}",
                                   "wait for it to end, or pick another --state DIR") from None
                pidfile.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{os.getpid()}\n")
            self._locked = True
            return
        raise KvmError(f"cannot lock {pidfile}")

    def taken_by(self) -> int | None:
        """The pid of another process whose pidfile is in the folder now (None: ours, or
        none): the folder was removed and made again under this run (as a test session
        wiping its temporary folders does, with a new run at the same path), and what this
        run removes by path at its end (spools, the pidfile) would be the new run's."""
        try:
            text = self.paths.pidfile.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() and int(text) != os.getpid() else None

    def close(self) -> None:
        if self._locked:
            if self.taken_by() is None:  # never another run's pidfile
                self.paths.pidfile.unlink(missing_ok=True)
            self._locked = False

    # --- phases ---------------------------------------------------------------------------
    def phase_record(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.data["phases"] if p["name"] == name), None)

    def done(self, name: str) -> bool:
        record = self.phase_record(name)
        return bool(record and record["status"] == "done")

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[dict[str, Any]]:
        """Record a phase's start, end and outcome; yields its counters to fill in."""
        record = self.phase_record(name)
        if record is None:
            record = {"name": name, "status": "running", "started": time.time(), "ended": None,
                      "counters": {}}
            self.data["phases"].append(record)
        else:
            record.update(status="running", ended=None, restarted=time.time())
        self.data["status"]["phase"] = name
        self.save()
        try:
            yield record["counters"]
        except BaseException as exc:
            record.update(status="interrupted" if isinstance(exc, KeyboardInterrupt)
                          else "failed", ended=time.time(), error=str(exc)[:300])
            self.save()
            raise
        record.update(status="done", ended=time.time())
        self.save()

    # --- state ------------------------------------------------------------------------------
    @property
    def offsets(self) -> dict[str, Any]:
        return self.data["offsets"]

    @property
    def counters(self) -> dict[str, Any]:
        return self.data["counters"]

    def note_tls(self, **sides: Endpoint) -> None:
        """Record the TLS files of each TLS side (``source=...``, ``target=...``): the paths
        the run was started with, as absolute paths; replaced at each start and resume."""
        with self._mutex:
            self.data["tls"] = {side: tls_record(endpoint.tls_settings)
                                for side, endpoint in sides.items() if endpoint.tls}
        self.save()

    def update_status(self, **fields: Any) -> None:
        with self._mutex:
            self.data["status"].update(fields)
            self.data["status"]["updated"] = time.time()

    def snapshot(self) -> dict[str, Any]:
        with self._mutex:
            return json.loads(json.dumps(self.data, default=str))

    def save(self) -> None:
        with self._mutex:
            self.data["updated"] = time.time()
            write_json_atomic(self.paths.ledger, self.data)
            self.timeline.offer(self.data["status"])
            self.timeline.save()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.save()
        self.close()


def tls_record(settings: TlsSettings) -> dict[str, Any]:
    """``settings`` as the ledger keeps them: file paths (absolute) and the insecure flag."""
    files = {name: os.path.abspath(path) for name, path in
             (("ca", settings.ca), ("cert", settings.cert), ("key", settings.key)) if path}
    return {**files, "insecure": settings.insecure}


def recorded_tls(ledger: dict[str, Any], side: str) -> TlsSettings | None:
    """The TLS settings a ledger recorded for ``side`` (None: none recorded)."""
    record = ledger.get("tls", {}).get(side)
    if not isinstance(record, dict):
        return None
    return TlsSettings(ca=record.get("ca"), cert=record.get("cert"), key=record.get("key"),
                       insecure=bool(record.get("insecure")))


def recorded_run(root: Path) -> dict[str, Any] | None:
    """What the ledger in ``root`` says its run is (None: no ledger there yet)."""
    try:
        run = json.loads(StatePaths(root).ledger.read_text()).get("run")
    except (OSError, ValueError):
        return None
    return run if isinstance(run, dict) else None


def recorded_offsets(root: Path) -> dict[str, Any]:
    """The offsets the ledger in ``root`` recorded (empty: none, or no ledger)."""
    try:
        offsets = json.loads(StatePaths(root).ledger.read_text()).get("offsets")
    except (OSError, ValueError):
        return {}
    return offsets if isinstance(offsets, dict) else {}


def _but(run: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if k not in keys}


def without_password(url: str) -> str:
    """A masked URL with its masked password taken out: a password is a credential, not the
    run's identity (it may have changed since; ``--resume`` gives the new one)."""
    return url.replace(":***@", "@").replace("://@", "://")


def _without_passwords(run: dict[str, Any]) -> dict[str, Any]:
    """``run`` with the masked passwords taken out of its URLs."""
    return {k: without_password(v) if isinstance(v, str) else v for k, v in run.items()}


def _describe(run: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in run.items())
