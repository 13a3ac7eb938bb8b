"""held_by_other: DuckDB's file lock seen from another process, without opening the file."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from hermes_stream.file_lock import held_by_other

HOLD = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
print("held", flush=True)
sys.stdin.read()
"""


@contextmanager
def held(path: Path, mode: str) -> Iterator[None]:
    """Another process holds *path* open (mode 'rw' or 'ro') until the block ends."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"held\n"
        yield
    finally:
        child.communicate(timeout=30)


def test_a_writer_keeps_readers_and_writers_out(tmp_path: Path) -> None:
    path = tmp_path / "x.duckdb"
    duckdb.connect(str(path)).close()
    assert not held_by_other(path, exclusive=True)
    with held(path, "rw"):
        assert held_by_other(path, exclusive=False)
        assert held_by_other(path, exclusive=True)
    assert not held_by_other(path, exclusive=True)


def test_a_reader_keeps_only_writers_out(tmp_path: Path) -> None:
    path = tmp_path / "x.duckdb"
    duckdb.connect(str(path)).close()
    with held(path, "ro"):
        assert not held_by_other(path, exclusive=False)
        assert held_by_other(path, exclusive=True)


def test_no_file_is_not_held(tmp_path: Path) -> None:
    assert not held_by_other(tmp_path / "missing.duckdb", exclusive=True)


def test_a_replaced_file_is_probed_afresh(tmp_path: Path) -> None:
    path = tmp_path / "x.duckdb"
    duckdb.connect(str(path)).close()
    assert not held_by_other(path, exclusive=True)  # probes the first file
    path.unlink()
    duckdb.connect(str(path)).close()
    with held(path, "rw"):
        assert held_by_other(path, exclusive=True)
