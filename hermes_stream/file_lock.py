"""Asking whether another process holds a DuckDB file, without trying to open it.

DuckDB locks its file with ``fcntl``: a write lock while a process has it
read-write, a read lock while read-only. A failed ``duckdb.connect`` costs
about 5 ms of CPU (measured here), so a reader waiting for the worker to
release the file, retrying every few milliseconds, kept a fifth of a core
busy; ``F_GETLK`` answers the same question in a system call and takes no
lock. Where ``fcntl`` is missing (Windows) the answer is always "free" and
callers fall back to trying.

The probing descriptor of each file stays open for the life of the process:
closing any descriptor of a file drops every ``fcntl`` lock the process holds
on it, DuckDB's own included.
"""

from __future__ import annotations

import os
import struct
import threading
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

# struct flock on Linux and the BSDs: l_type, l_whence, l_start, l_len, l_pid.
_FLOCK = "hhqqi"

_probes: dict[str, tuple[int, int]] = {}  # path -> (inode, descriptor)
_mutex = threading.Lock()


def held_by_other(path: Path, exclusive: bool) -> bool:
    """True if another process holds a lock on *path* that keeps this one out.

    *exclusive*: the caller wants the file read-write (any lock is in the
    way); otherwise read-only (only a write lock is).
    """
    if fcntl is None:
        return False
    fd = _probe(path)
    if fd is None:
        return False
    wanted = fcntl.F_WRLCK if exclusive else fcntl.F_RDLCK
    try:
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(_FLOCK, wanted, os.SEEK_SET, 0, 0, 0))
    except OSError:
        return False
    held: int = struct.unpack(_FLOCK, answer)[0]
    return held != fcntl.F_UNLCK


def _probe(path: Path) -> int | None:
    """An open descriptor of the file now at *path*, reopened if the file was replaced."""
    key = str(path)
    try:
        inode = os.stat(key).st_ino
    except OSError:
        return None  # no file yet: nothing holds it
    with _mutex:
        known = _probes.get(key)
        if known is not None and known[0] == inode:
            return known[1]
        try:
            fd = os.open(key, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        _probes[key] = (inode, fd)  # an old descriptor of a replaced file stays open, see above
        return fd
