"""Malformed records never stop the worker, and nothing valid is lost beside them."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from hermes_stream import codec
from hermes_stream.events import make_event
from hermes_stream.store import query
from hermes_stream.topics import Topics
from tests.conftest import wait_for
from tests.integration.conftest import events_in, read_topic, scalar


def api_call(session: str, **fields: object) -> dict[str, object]:
    base = dict(model="gpt-4o", provider="openai", input_tokens=100, output_tokens=10, status="ok")
    return make_event("api_call", session, **{**base, **fields})


def bad_records() -> list[bytes]:
    missing = api_call("s-bad")
    del missing["model"]
    return [
        b"this is not json {",
        codec.dumps({**api_call("s-bad"), "type": "telepathy"}),
        codec.dumps(missing),
        codec.dumps(api_call("s-bad", input_tokens=-5)),
        codec.dumps(api_call("s-bad")).replace(b'"input_tokens":100', b'"input_tokens":NaN'),
        b'{"padding": "' + b"x" * (5 * 1024 * 1024) + b'"}',
    ]


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=8 * 1024 * 1024)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"s-mixed", partition=0)
    finally:
        await producer.stop()


def test_malformed_records_go_to_the_dlq_and_valid_ones_land(settings_factory, worker_factory) -> None:
    settings = settings_factory()
    topics = Topics(settings.topic_prefix)
    worker = worker_factory(settings)
    good = [api_call("s-mixed", input_tokens=i + 1) for i in range(12)]
    bad = bad_records()
    mixed_array = codec.dumps([good[10], {"type": "api_call"}, good[11]])
    values: list[bytes] = []
    for i, record in enumerate(bad):
        values += [codec.dumps(good[2 * i]), record, codec.dumps(good[2 * i + 1])]
    values.append(mixed_array)

    asyncio.run(produce(settings.broker, topics.events, values))

    wait_for(lambda: scalar(settings, "SELECT count(*) FROM api_calls") == len(good), timeout=60)
    wait_for(lambda: scalar(settings, "SELECT count(*) FROM dead_letters") == len(bad) + 1, timeout=30)
    assert worker.running
    assert scalar(settings, "SELECT input_tokens FROM sessions WHERE session_id = 's-mixed'") == sum(
        e["input_tokens"] for e in good
    )
    _, reasons = query(settings.db, "SELECT reason, payload_bytes FROM dead_letters ORDER BY source_offset")
    text = " | ".join(r for r, _ in reasons)
    for expected in (
        "not valid JSON",
        "unknown event type 'telepathy'",
        "model: is required",
        "input_tokens: must not be negative",
        "oversized payload",
        "model: is required",
    ):
        assert expected in text
    assert max(size for _, size in reasons) > 5 * 1024 * 1024

    dlq = events_in(read_topic(settings.broker, topics.dlq, expected=len(bad) + 1))
    assert len(dlq) == len(bad) + 1
    assert all(letter["reason"] for letter in dlq)
    assert {letter["event_index"] for letter in dlq} == {None, 1}
