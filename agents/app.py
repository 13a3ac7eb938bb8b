"""Building the Faust app from :class:`~hermes_stream.settings.Settings`.

Nothing happens at import: the app exists once :func:`create_app` is called,
so tests can build one per test with their own broker and prefix.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from hermes_stream.settings import Settings
from hermes_stream.store import WriterProcess

from . import alert_sink, codec, ingest, skills


def create_app(settings: Settings) -> faust.App:
    """The worker's app, with every agent registered."""
    codec.register()
    servers = ";".join(f"kafka://{host}" for host in (settings.broker or "").split(","))
    app = faust.App(
        settings.app_id,
        broker=servers,
        store="memory://",
        autodiscover=False,
        web_enabled=True,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        canonical_url=f"http://{settings.web_host}:{settings.web_port}",
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=10,
        broker_heartbeat_interval=2,
        producer_max_request_size=settings.max_record_bytes + 65_536,
        producer_max_batch_size=settings.max_record_bytes,
        producer_linger=0.005,
        consumer_max_fetch_size=max(4 * 1_048_576, 2 * settings.max_record_bytes),
        table_standby_replicas=0,
    )
    # Built here rather than from the broker URL, to shorten the consumer's fetch wait.
    app.transport = _Transport(app.conf.broker_consumer, app)
    # Table writes (the skill trends', one per invocation, in bursts as sessions
    # finish) queue changelog messages in this buffer; past 100 Faust stops
    # delivering records until it drains, one message at a time. (Ingest sends
    # its sessions table's changes itself, batched with its other outputs.)
    app.producer.buffer.max_messages = CHANGELOG_BUFFER
    per_category = settings.templates_per_category if settings.auto_templates else 0
    writer = WriterProcess(
        settings.db, settings.lock_timeout, auto_templates=per_category
    )  # one for all sinks
    ingest.register(app, settings, writer)
    skills.register(app, settings, ingest.producer_publish(app))
    alert_sink.register(app, settings, writer)
    return app


#: Changelog messages that may wait to be sent before Faust holds back records.
CHANGELOG_BUFFER = 20_000

#: How long a fetch may wait for new records at the broker. Faust fixes it at
#: 1500 ms. Kafka answers a waiting fetch as soon as records arrive, but the
#: embedded broker (Tansu) answers only when the wait is over, so new records
#: reached the worker up to 1.5 s late. With 50 ms an idle worker sends twenty
#: small fetches a second instead of one, and a failed call reaches its error
#: topic in ~50 ms (p99 ~110 ms under 5,000 events/s; 100 ms gave ~75 / ~195).
FETCH_MAX_WAIT_MS = 50


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the consumer starts
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
