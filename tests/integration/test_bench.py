"""``hermes-stream bench`` end to end, small: every phase runs and the figures add up (no timing asserted)."""

from __future__ import annotations

from collections.abc import Callable

from hermes_stream.bench import run_bench
from hermes_stream.settings import Settings


def test_bench_runs_each_pipeline_afresh_and_reports_the_median(
    settings_factory: Callable[..., Settings],
) -> None:
    figures = run_bench(
        settings_factory(),
        sessions=20,
        seed=5,
        load=200,
        reports=False,
        runs=2,
        latency_seconds=1.0,
        quiet_seconds=1.0,
    )

    assert figures["runs"] == 2
    runs = figures["e2e_events_per_s_runs"]
    assert len(runs) == 2 and all(rate > 0 for rate in runs)
    assert figures["e2e_events_per_s"] == min(runs)  # the lower middle of two
    assert figures["raw_consume_events_per_s"] == min(figures["raw_consume_events_per_s_runs"])
    assert figures["ratio"] == round(figures["e2e_events_per_s"] / figures["raw_consume_events_per_s"], 4)
    assert figures["error_latency_samples"] > 0  # timed on the last run only
    assert figures["events"] > 20 * 5
    cpu = figures["e2e_cpu_seconds"]  # the test broker is not the benchmark's child: no "broker"
    assert {"sdk", "worker", "writer"} <= cpu.keys() and all(seconds >= 0 for seconds in cpu.values())
    assert figures["e2e_cpu_us_per_event"] == round(sum(cpu.values()) / figures["events"] * 1e6, 1)
    quiet = figures["quiet_cpu_seconds"]  # on the last run only, like the error latency
    assert {"sdk", "worker", "writer"} <= quiet.keys() and figures["quiet_cpu_percent"] >= 0
