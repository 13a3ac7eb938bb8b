"""``hermes-stream bench``: what the pipeline costs, measured on this machine.

1. Validation: microseconds per event for :func:`validate_event` (one event
   dict) and for :func:`decode_valid` (a whole record's JSON decoded and
   checked at once, what the worker runs first) over a generated workload.
2. End to end: a worker is started and warmed up; then the workload is
   emitted through the SDK into the broker, and the clock stops when the
   last of its rows is durable in DuckDB (the write's COMMIT returned, as the
   worker's ``GET /stats`` says). ``e2e_events_per_s`` = events / that time.
   ``e2e_cpu_seconds`` is the CPU each process used meanwhile (:func:`cpu_seconds`).
   Then DuckDB is checked for every row; ``e2e_readable_seconds`` is when a
   reader first saw them all (the writer gives the file up 0.5 s after its
   last write).
3. Raw consume: a plain aiokafka consumer reads and decodes the same records
   in the same run, the ceiling the pipeline is compared with (``ratio``).
4. Error latency: with a background load of ``--load`` events/s going
   through the SDK, failed API calls are emitted now and then; the time from
   each one's ``emit()`` to its record on ``hermes.errors.*`` is measured by a
   consumer in the same process (``error_latency_p50_ms`` / ``_p99_ms``).
5. Quiet stream: an agent's pace, ``QUIET_RATE`` events/s emitted one at a
   time (a record each) for ``QUIET_SECONDS``; ``quiet_cpu_seconds`` is the
   CPU each process used meanwhile and ``quiet_cpu_percent`` their sum, in
   percent of one core: what a worker costs beside agents that are mostly idle.
6. Reports: ``report daily``, ``sessions`` and ``models`` timed on a store of
   10M API calls and 200k sessions that it builds (:mod:`~hermes_stream.report_bench`).

Steps 2 and 3 run ``--runs`` times, each on a pipeline of its own (broker,
worker, topics, DuckDB file), and steps 4 and 5 once, on the last. The end-to-end
figures are those of the median run by ``e2e_events_per_s`` (the lower
middle one for an even count), ``raw_consume_events_per_s`` is the median
rate, and ``e2e_events_per_s_runs`` / ``raw_consume_events_per_s_runs`` list
every run: on two cores shared by the producer, the broker, the worker and
its writer, one run's figure strays by ±15%.

Progress goes to stderr; the caller prints the figures as one JSON line.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from aiokafka import AIOKafkaConsumer

from hermes_stream import codec
from hermes_stream.events import Event, decode_valid, make_event, validate_event
from hermes_stream.generator import generate_events
from hermes_stream.producer import EventProducer
from hermes_stream.publish import publish_events
from hermes_stream.report_bench import report_timings
from hermes_stream.settings import Settings
from hermes_stream.topics import Topics
from hermes_stream.worker import count_rows, local_pipeline, sink_counters, wait_until

#: How long the latency phase runs, and how often a failed call is emitted in it.
LATENCY_SECONDS = 10.0
PROBE_INTERVAL = 0.05
#: The quiet stream's pace and length.
QUIET_RATE = 10
QUIET_SECONDS = 10.0


ROWS = "SELECT (SELECT count(*) FROM api_calls) + (SELECT count(*) FROM tool_results)"


def run_bench(
    settings: Settings,
    sessions: int,
    seed: int,
    load: int = 5000,
    reports: bool = True,
    runs: int = 1,
    latency_seconds: float = LATENCY_SECONDS,
    quiet_seconds: float = QUIET_SECONDS,
) -> dict[str, Any]:
    events = list(generate_events(sessions, seed))
    figures: dict[str, Any] = {"events": len(events), "sessions": sessions, "runs": runs}
    figures["validate_us_per_event"] = round(_validation_cost(events), 3)
    figures["fast_check_us_per_event"] = round(_fast_check_cost(events), 3)
    with tempfile.TemporaryDirectory(prefix="hermes-bench-") as tmp:
        work = Path(tmp)
        throughput = []
        for run in range(1, runs + 1):
            if runs > 1:
                _say(f"run {run} of {runs}:")
            latency_load = load if run == runs else None
            run_figures = _throughput_run(
                settings, work / f"run{run}", events, latency_load, latency_seconds, quiet_seconds
            )
            throughput.append(run_figures)
        figures.update(_medians(throughput))
        if reports:
            figures.update(report_timings(work))
    figures["ratio"] = round(figures["e2e_events_per_s"] / figures["raw_consume_events_per_s"], 4)
    return figures


def _throughput_run(
    settings: Settings,
    work: Path,
    events: list[Event],
    load: int | None,
    latency_seconds: float,
    quiet_seconds: float,
) -> dict[str, Any]:
    """One run on a pipeline of its own: end to end and raw consume; with a *load*, the last two steps."""
    work.mkdir(parents=True)
    # Own topics and consumer group too: a broker given by HERMES_STREAM_BROKER keeps earlier runs'.
    name = f"bench-{uuid.uuid4().hex[:8]}"
    settings = settings.with_(
        db=work / "bench.duckdb",
        data_dir=work / "state",
        spool_dir=work / "spool",
        topic_prefix=name,
        app_id=name,
    )
    with local_pipeline(settings, work) as (live, worker):
        warm = _warm_up(live, worker)
        figures = _end_to_end(live, worker, events)
        figures["raw_consume_events_per_s"] = round(asyncio.run(_raw_consume(live, warm + len(events))))
        if load is not None:
            figures.update(asyncio.run(error_latency(live, load, latency_seconds)))
            figures.update(quiet_stream(live, worker, QUIET_RATE, quiet_seconds))
    return figures


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median run's end-to-end figures, the median raw consume rate, and every run's rates.

    For an even count of runs, the median is the lower middle one.
    """
    middle = sorted(runs, key=lambda run: run["e2e_events_per_s"])[(len(runs) - 1) // 2]
    figures = {**runs[-1], **middle}  # the error latency is timed on the last run
    figures["raw_consume_events_per_s"] = statistics.median_low(
        run["raw_consume_events_per_s"] for run in runs
    )
    if len(runs) > 1:
        figures["e2e_events_per_s_runs"] = [run["e2e_events_per_s"] for run in runs]
        figures["raw_consume_events_per_s_runs"] = [run["raw_consume_events_per_s"] for run in runs]
    return figures


def _validation_cost(events: list[Event]) -> float:
    return _best_us_per_event(validate_event, events, len(events))


def _fast_check_cost(events: list[Event]) -> float:
    """The decoding check the worker runs on a whole record (here: records of 500 events)."""
    records = [codec.dumps(events[i : i + 500]) for i in range(0, len(events), 500)]
    return _best_us_per_event(decode_valid, records, len(events))


def _best_us_per_event(check: Callable[[Any], object], items: list[Any], events: int) -> float:
    """Microseconds per event of *check* over *items*, best of five passes."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for item in items:
            check(item)
        best = min(best, time.perf_counter() - started)
    return best / events * 1e6


def _warm_up(settings: Settings, worker: Any) -> int:
    """Wait until the worker has processed one session; return the events that took."""
    _say("starting the worker …")
    warm = list(generate_events(1, seed=0))
    asyncio.run(publish_events(settings, warm))
    wait_until(lambda: count_rows(settings, "SELECT count(*) FROM sessions") >= 1, 120, worker)
    return len(warm)


def _end_to_end(settings: Settings, worker: Any, events: list[Event]) -> dict[str, Any]:
    target = count_rows(settings, ROWS) + sum(e["type"] in ("api_call", "tool_result") for e in events)
    written = sink_counters(settings)["events"]
    _say(f"pushing {len(events):,} events through SDK → broker → worker → DuckDB …")
    cpu_before = cpu_seconds(worker.pid)
    started = time.time()
    asyncio.run(publish_events(settings, events))
    emit_seconds = time.time() - started
    # The worker counts the events whose DuckDB write has committed, and notes
    # when the last one did: the clock stops at that note, however late it is
    # read. Opening the file would hold off the writes being timed, and asking
    # often would take CPU from them (~1 ms a request, both sides).
    wait_until(lambda: sink_counters(settings)["events"] - written >= len(events), 300, worker, interval=0.1)
    durable = sink_counters(settings)["last_write_at"] - started
    cpu = cpu_used_since(cpu_before, worker.pid)
    # Then check DuckDB itself; readers get in once the writer gives the file up.
    wait_until(lambda: count_rows(settings, ROWS) >= target, 60, worker, interval=0.02)
    return {
        "emit_events_per_s": round(len(events) / emit_seconds),
        "e2e_seconds": round(durable, 3),
        "e2e_events_per_s": round(len(events) / durable),
        "e2e_readable_seconds": round(time.time() - started, 3),
        "e2e_cpu_seconds": cpu,
        "e2e_cpu_us_per_event": round(sum(cpu.values()) / len(events) * 1e6, 1),
    }


def cpu_seconds(worker_pid: int) -> dict[str, float]:
    """CPU seconds used so far by each part of the pipeline, all threads included.

    ``sdk`` is this process (the producer SDK); from ``/proc`` (Linux), ``worker``
    is the worker process, ``writer`` its children (the DuckDB writer), and
    ``broker`` any other child of this process (an embedded broker). Elsewhere,
    only ``sdk``.
    """
    figures = {"sdk": time.process_time()}
    if not os.path.isdir("/proc"):
        return figures
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()  # the name may hold spaces
        except OSError:
            continue  # it has just ended
        pid = int(entry.name)
        parents[pid], used[pid] = int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks
    me = os.getpid()
    for pid, seconds in used.items():
        top = pid  # becomes pid's ancestor that is a child of this process, if it has one
        while top in parents and parents[top] not in (me, 0, 1):
            top = parents[top]
        if parents.get(top) != me:
            continue  # not in this process's tree
        role = "broker" if top != worker_pid else "worker" if pid == worker_pid else "writer"
        figures[role] = figures.get(role, 0.0) + seconds
    return figures


def cpu_used_since(before: dict[str, float], worker_pid: int) -> dict[str, float]:
    """CPU seconds each part has used since :func:`cpu_seconds` returned *before*."""
    return {role: round(s - before.get(role, 0.0), 2) for role, s in cpu_seconds(worker_pid).items()}


async def _raw_consume(settings: Settings, expected: int) -> float:
    _say("reading the same records with a plain aiokafka consumer …")
    consumer = AIOKafkaConsumer(
        Topics(settings.topic_prefix).events,
        bootstrap_servers=settings.broker,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * settings.max_record_bytes,
    )
    await consumer.start()
    try:
        count = 0
        started = last = time.perf_counter()
        while count < expected:
            batches = await consumer.getmany(timeout_ms=1000)
            if not batches:
                break  # the topic is drained
            for messages in batches.values():
                for message in messages:
                    decoded = codec.loads(message.value)
                    count += len(decoded) if isinstance(decoded, list) else 1
            last = time.perf_counter()
        return count / (last - started)
    finally:
        await consumer.stop()


async def error_latency(settings: Settings, load: int, seconds: float = LATENCY_SECONDS) -> dict[str, Any]:
    """p50/p99 milliseconds from emitting a failed call to its record on an error topic."""
    _say(f"timing failed calls to hermes.errors.* over {seconds:.0f} s, with {load:,} events/s around them …")
    topics = Topics(settings.topic_prefix)
    consumer = AIOKafkaConsumer(
        *(topics.errors(c) for c in ("retryable", "permanent", "unknown")),
        bootstrap_servers=settings.broker,
        auto_offset_reset="latest",
        enable_auto_commit=False,
        fetch_max_wait_ms=5,
    )
    await consumer.start()
    try:
        await _assigned(consumer)
        emitted: dict[str, float] = {}
        arrived: dict[str, float] = {}
        reader = asyncio.create_task(_read_errors(consumer, arrived))
        sessions = max(100, int(load * seconds / 15))  # ~22 events a session
        background = (e for e in generate_events(sessions, seed=3) if e.get("status") != "error")
        async with EventProducer.from_settings(settings) as producer:
            sent = await _emit_with_probes(producer, background, load, seconds, emitted)
            await producer.flush(30)
        deadline = time.monotonic() + 30
        while len(arrived.keys() & emitted.keys()) < len(emitted) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        reader.cancel()
    finally:
        await consumer.stop()
    latencies = sorted((arrived[k] - t) * 1000 for k, t in emitted.items() if k in arrived)
    if len(latencies) < len(emitted):
        _say(f"{len(emitted) - len(latencies)} of {len(emitted)} failed calls never reached an error topic")
    return {
        "background_events_per_s": round(sent / seconds),
        "error_latency_samples": len(latencies),
        "error_latency_p50_ms": round(_quantile(latencies, 0.5), 1),
        "error_latency_p99_ms": round(_quantile(latencies, 0.99), 1),
    }


def quiet_stream(settings: Settings, worker: Any, rate: int, seconds: float) -> dict[str, Any]:
    """CPU each process uses while *rate* events/s are emitted one at a time for *seconds*."""
    _say(f"emitting {rate} events/s, one at a time, for {seconds:.0f} s …")
    time.sleep(1.0)  # the last phase's writes end
    events = itertools.islice(generate_events(int(rate * seconds) // 10 + 1, seed=4), int(rate * seconds))
    before = cpu_seconds(worker.pid)
    started = time.monotonic()
    asyncio.run(_trickle(settings, events, rate))
    elapsed = time.monotonic() - started
    cpu = cpu_used_since(before, worker.pid)
    return {
        "quiet_events_per_s": rate,
        "quiet_cpu_seconds": cpu,
        "quiet_cpu_percent": round(sum(cpu.values()) / elapsed * 100, 1),
    }


async def _trickle(settings: Settings, events: Iterator[Event], rate: int) -> None:
    async with EventProducer.from_settings(settings) as producer:
        started = time.monotonic()
        for i, event in enumerate(events):
            await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
            producer.emit(event)
        await producer.flush(30)


async def _emit_with_probes(
    producer: EventProducer, background: Iterator[Event], load: int, seconds: float, emitted: dict[str, float]
) -> int:
    """Emit *load* events/s from *background* for *seconds*, and a failed call every PROBE_INTERVAL."""
    started = time.monotonic()
    sent = 0
    next_probe = started
    while (now := time.monotonic()) < started + seconds:
        due = int((now - started) * load) - sent
        for event in itertools.islice(background, max(due, 0)):
            producer.emit(event)
            sent += 1
        if now >= next_probe:
            probe = make_event(
                "api_call", f"probe_{len(emitted) % 50}", model="m", provider="p",
                input_tokens=1, output_tokens=0, status="error", http_status=529,
            )  # fmt: skip
            emitted[probe["event_id"]] = time.monotonic()
            producer.emit(probe)
            next_probe += PROBE_INTERVAL
        await asyncio.sleep(0.002)
    return sent


async def _read_errors(consumer: AIOKafkaConsumer, arrived: dict[str, float]) -> None:
    while True:
        batches = await consumer.getmany(timeout_ms=100)
        now = time.monotonic()
        for messages in batches.values():
            for message in messages:
                arrived.setdefault(codec.loads(message.value)["event_id"], now)


async def _assigned(consumer: AIOKafkaConsumer) -> None:
    """Wait until the consumer has its partitions and knows where their ends are."""
    deadline = time.monotonic() + 30
    while not consumer.assignment() and time.monotonic() < deadline:
        await consumer.getmany(timeout_ms=100)
    for tp in consumer.assignment():
        await consumer.position(tp)


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def _say(text: str) -> None:
    click.echo(text, err=True)
