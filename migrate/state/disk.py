"""The state folder's disk: full, over quota, read-only or not ours to write. One line naming
the file and what to do, never "a kvmigrate bug", and never taken for a network fault (a
spool write that fails is not a dropped replication link to reconnect).

* :func:`check_writable`: before connecting to anything, the ``--state`` folder (or the
  nearest folder that exists above it) must be writable (exit 2 otherwise).
* :func:`disk_errors`: around the writes of a run, turns the disk's ``OSError`` into
  :class:`StateDiskError` (exit 4; the state folder is left as it was, so ``--resume``
  continues once there is room); so too a folder of the state folder that something else
  removed while the run used it (a sync seen once under pytest stopped with a bare "No
  such file or directory" for its spool's stream file: most likely a concurrent session
  cleaning its temporary folders took the spool of the running sync).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from migrate.errors import ExitCode, KvmError

# Full or read-only: the operator's to fix, from any write (state folder, spool, output file).
DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
# Also the operator's to fix, for a file of the state folder.
PERMISSION_ERRORS = (errno.EACCES, errno.EPERM)


class StateDiskError(KvmError):
    """A write to the state folder failed for lack of room or permission."""


def _what(exc: OSError) -> str:
    text = exc.strerror or os.strerror(exc.errno or 0)
    return text[:1].lower() + text[1:]


def _hint(exc: OSError, then: str) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"free space there or give --state another folder, then {then}"
    return f"make it writable or give --state another folder, then {then}"


def state_disk_error(exc: OSError, where: Path) -> StateDiskError | None:
    """The one-line error for ``exc`` raised writing in the state folder ``where`` (None:
    not a disk error)."""
    path = Path(exc.filename) if exc.filename else where
    inside = path == where or where in path.parents
    if exc.errno in DISK_ERRORS or (exc.errno in PERMISSION_ERRORS and inside):
        return StateDiskError(f"{_what(exc)} writing {path}",
                              _hint(exc, "run again with --resume"))
    if exc.errno == errno.ENOENT and inside and not path.parent.is_dir():
        # kvmigrate removes its folders only once the run has ended: something else did
        return StateDiskError(f"the folder {path.parent} was removed while the run was "
                              f"using it (at {path.name})",
                              "keep other programs (a clean-up of temporary folders) out of "
                              "the state folder, then run again with --resume (if the state "
                              "folder is gone too: a new run with --flush-target)")
    return None


@contextlib.contextmanager
def disk_errors(where: Path) -> Iterator[None]:
    """Turn a disk error of a write in the state folder ``where`` into one clear line."""
    try:
        yield
    except OSError as exc:
        clear = state_disk_error(exc, where)
        if clear is None:
            raise
        raise clear from None


def check_writable(folder: Path) -> None:
    """Refuse (exit 2) a state folder that cannot be written, before any connection: the
    folder itself when it exists (a small file is written and removed), else the nearest
    folder above it that exists (where it would be made)."""
    probe_in = folder
    while not probe_in.exists() and probe_in != probe_in.parent:
        probe_in = probe_in.parent
    try:
        if probe_in != folder:
            if not os.access(probe_in, os.W_OK | os.X_OK):
                raise PermissionError(errno.EROFS if _read_only(probe_in) else errno.EACCES,
                                      os.strerror(errno.EROFS if _read_only(probe_in)
                                                  else errno.EACCES), str(probe_in))
            return
        probe = folder / f".kvmigrate-probe-{os.getpid()}"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, b"kvmigrate")
                os.fsync(fd)
            finally:
                os.close(fd)
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()
    except OSError as exc:
        raise StateDiskError(f"the state folder {folder} cannot be written: {_what(exc)}"
                             + (f" ({exc.filename})" if exc.filename and
                                Path(exc.filename) != folder else ""),
                             _hint(exc, "run again").replace(", then run again", ""),
                             exit_code=ExitCode.USAGE) from None


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False
