"""The producer's on-disk spool: events kept while the broker is away.

A spool directory holds files of encoded events, one JSON object per line.
File names sort in replay order (``<sequence>-<pid>.spool``). Each file has a
``.pos`` sidecar with the byte offset of its first event not yet delivered, so
a restarted producer resumes where the last one stopped.

A producer holds an exclusive lock on the file it appends to. On open it
adopts every unlocked file it finds (left by a process that died) and replays
those first: they are older than anything it is about to emit.
"""

from __future__ import annotations

import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from hermes_stream.exceptions import HermesStreamError


class SpoolFile:
    """One spool file with its replay position."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pos_path = path.with_suffix(".pos")
        self.handle: BinaryIO = path.open("a+b")
        self.position = int(self._pos_path.read_text() or 0) if self._pos_path.exists() else 0

    def try_lock(self) -> bool:
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def pending_bytes(self) -> int:
        self.handle.flush()
        return os.fstat(self.handle.fileno()).st_size - self.position

    def read(self, max_events: int, max_bytes: int) -> tuple[list[bytes], int]:
        """Up to *max_events* lines from the position on, and the bytes they span."""
        self.handle.flush()
        self.handle.seek(self.position)
        lines: list[bytes] = []
        size = 0
        while len(lines) < max_events and size < max_bytes:
            line = self.handle.readline()
            if not line.endswith(b"\n"):
                break  # end of file, or a line cut short by a crash mid-write
            lines.append(line[:-1])
            size += len(line)
        self.handle.seek(0, os.SEEK_END)
        return lines, size

    def advance(self, size: int) -> None:
        self.position += size
        self._pos_path.write_text(str(self.position))

    def reset(self) -> None:
        self.handle.truncate(0)
        self.position = 0
        self._pos_path.unlink(missing_ok=True)

    def remove(self) -> None:
        self.handle.close()
        self.path.unlink(missing_ok=True)
        self._pos_path.unlink(missing_ok=True)


@dataclass(frozen=True)
class SpoolBatch:
    """Events read from the spool, and where they came from."""

    events: list[bytes]
    source: SpoolFile | None
    size: int


class Spool:
    """An ordered on-disk queue of encoded events."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._files: list[SpoolFile] = []
        self._own: SpoolFile | None = None

    def open(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for path in sorted(self.directory.glob("*.spool")):
                spool_file = SpoolFile(path)
                if spool_file.try_lock():
                    self._files.append(spool_file)
                else:
                    spool_file.handle.close()  # a live producer owns it
            self._own = self._new_file(time.time_ns())
            self._files.append(self._own)
        except OSError as exc:
            raise HermesStreamError(f"cannot open the spool in {self.directory}: {exc}") from exc

    def _new_file(self, sequence: int) -> SpoolFile:
        spool_file = SpoolFile(self.directory / f"{sequence:020d}-{os.getpid()}.spool")
        spool_file.try_lock()
        return spool_file

    @property
    def pending(self) -> bool:
        return any(f.pending_bytes() > 0 for f in self._files)

    def append(self, data: bytes) -> None:
        """Store *data* last; flushed at once, so a producer that dies keeps it (~2 µs)."""
        assert self._own is not None, "spool is not open"
        self._own.handle.write(data + b"\n")
        self._own.handle.flush()

    def prepend(self, items: list[bytes]) -> None:
        """Put *items* ahead of everything already spooled (they are older)."""
        if not self.pending:
            for data in items:
                self.append(data)
            return
        head = self._files[0]
        sequence = int(head.path.name.split("-", 1)[0]) - 1
        spool_file = self._new_file(sequence)
        spool_file.handle.write(b"".join(data + b"\n" for data in items))
        spool_file.handle.flush()
        self._files.insert(0, spool_file)

    def read(self, max_events: int, max_bytes: int) -> SpoolBatch:
        """The oldest spooled events, without removing them (see :meth:`commit`)."""
        for spool_file in self._files:
            lines, size = spool_file.read(max_events, max_bytes)
            if lines:
                return SpoolBatch(lines, spool_file, size)
        return SpoolBatch([], None, 0)

    def commit(self, batch: SpoolBatch) -> None:
        """Drop the events of *batch*: they were delivered."""
        if batch.source is None:
            return
        batch.source.advance(batch.size)
        if batch.source.pending_bytes() == 0:
            self._retire(batch.source)

    def _retire(self, spool_file: SpoolFile) -> None:
        if spool_file is self._own:
            spool_file.reset()
        else:
            self._files.remove(spool_file)
            spool_file.remove()

    def depth_bytes(self) -> int:
        return sum(f.pending_bytes() for f in self._files)

    def close(self) -> None:
        for spool_file in self._files:
            spool_file.handle.flush()
            if spool_file.pending_bytes() == 0:
                spool_file.remove()
            else:
                spool_file.handle.close()
        self._files.clear()
        self._own = None
