"""The on-disk spool: an ordered queue of encoded events that survives restarts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hermes_stream.spool import Spool


@pytest.fixture
def open_spool(tmp_path: Path) -> Iterator[Callable[[], Spool]]:
    """Open spools on one directory; whatever a test leaves open is closed after it."""
    spools: list[Spool] = []

    def make() -> Spool:
        spool = Spool(tmp_path / "spool")
        spool.open()
        spools.append(spool)
        return spool

    yield make
    for spool in spools:
        spool.close()


def items(*names: str) -> list[bytes]:
    return [f'{{"n":"{name}"}}'.encode() for name in names]


def drain(spool: Spool) -> list[bytes]:
    """Read and commit until the spool is empty, as the producer's replay does."""
    out: list[bytes] = []
    while batch := spool.read(2, 1 << 20):
        if not batch.events:
            return out
        out.extend(batch.events)
        spool.commit(batch)
    return out


def test_read_returns_the_oldest_events_in_append_order(open_spool: Callable[[], Spool]) -> None:
    spool = open_spool()
    for data in items("a", "b", "c"):
        spool.append(data)

    assert spool.pending
    assert spool.read(10, 1 << 20).events == items("a", "b", "c")


def test_read_keeps_events_until_they_are_committed(open_spool: Callable[[], Spool]) -> None:
    spool = open_spool()
    for data in items("a", "b", "c"):
        spool.append(data)

    first = spool.read(2, 1 << 20)
    assert spool.read(2, 1 << 20).events == items("a", "b")  # not committed: read again

    spool.commit(first)
    assert spool.read(10, 1 << 20).events == items("c")


def test_a_fully_committed_spool_is_empty(open_spool: Callable[[], Spool]) -> None:
    spool = open_spool()
    for data in items("a", "b"):
        spool.append(data)

    spool.commit(spool.read(10, 1 << 20))

    assert not spool.pending
    assert spool.depth_bytes() == 0
    assert spool.read(10, 1 << 20).events == []


def test_read_stops_at_max_bytes(open_spool: Callable[[], Spool]) -> None:
    spool = open_spool()
    for data in items("a", "b", "c"):
        spool.append(data)

    batch = spool.read(10, len(items("a")[0]) + 1)

    assert batch.events == items("a")


def test_appended_events_are_on_disk_without_closing(open_spool: Callable[[], Spool], tmp_path: Path) -> None:
    """A producer that dies during an outage must not take spooled events with it."""
    spool = open_spool()
    for data in items("a", "b"):
        spool.append(data)

    on_disk = b"".join(path.read_bytes() for path in (tmp_path / "spool").glob("*.spool"))
    assert on_disk.splitlines() == items("a", "b")


def test_a_torn_last_line_is_not_replayed(open_spool: Callable[[], Spool], tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    directory.mkdir()
    a, b = items("a", "b")
    (directory / "00000000000000000001-1.spool").write_bytes(a + b"\n" + b + b"\n" + b'{"n":"c')

    assert drain(open_spool()) == [a, b]


def test_positions_persist_across_reopen(open_spool: Callable[[], Spool]) -> None:
    first = open_spool()
    for data in items("a", "b", "c", "d"):
        first.append(data)
    first.commit(first.read(2, 1 << 20))
    first.close()

    assert drain(open_spool()) == items("c", "d")


def test_a_delivered_spool_leaves_nothing_to_replay(open_spool: Callable[[], Spool], tmp_path: Path) -> None:
    first = open_spool()
    for data in items("a", "b"):
        first.append(data)
    drain(first)
    first.close()

    assert list((tmp_path / "spool").glob("*.spool")) == []
    assert drain(open_spool()) == []


def test_an_earlier_runs_files_are_replayed_before_new_events(open_spool: Callable[[], Spool]) -> None:
    first = open_spool()
    for data in items("a", "b"):
        first.append(data)
    first.close()

    second = open_spool()
    second.append(items("c")[0])

    assert drain(second) == items("a", "b", "c")


def test_a_file_locked_by_another_open_spool_is_not_adopted(open_spool: Callable[[], Spool]) -> None:
    live = open_spool()
    for data in items("a", "b"):
        live.append(data)

    other = open_spool()
    assert not other.pending
    assert drain(other) == []

    live.close()
    assert drain(open_spool()) == items("a", "b")


def test_prepend_puts_items_before_existing_content(open_spool: Callable[[], Spool]) -> None:
    spool = open_spool()
    for data in items("c", "d"):
        spool.append(data)

    spool.prepend(items("a", "b"))
    spool.append(items("e")[0])

    assert drain(spool) == items("a", "b", "c", "d", "e")


def test_prepend_twice_keeps_the_latest_prepend_first(open_spool: Callable[[], Spool]) -> None:
    spool = open_spool()
    spool.append(items("c")[0])

    spool.prepend(items("b"))
    spool.prepend(items("a"))

    assert drain(spool) == items("a", "b", "c")


def test_prepend_to_an_empty_spool_just_stores_the_items(open_spool: Callable[[], Spool]) -> None:
    spool = open_spool()

    spool.prepend(items("a", "b"))
    spool.append(items("c")[0])

    assert drain(spool) == items("a", "b", "c")


def test_prepended_order_survives_reopen(open_spool: Callable[[], Spool]) -> None:
    first = open_spool()
    first.append(items("b")[0])
    first.prepend(items("a"))
    first.close()

    assert drain(open_spool()) == items("a", "b")
