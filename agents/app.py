"""Building the Faust app from :class:`~hermes_stream.settings.Settings`.

Nothing happens at import: the app exists once :func:`create_app` is called,
so tests can build one per test with their own broker and prefix.
"""

from __future__ import annotations

import faust

from hermes_stream.settings import Settings

from . import codec, ingest


def create_app(settings: Settings) -> faust.App:
    """The worker's app, with every agent registered."""
    codec.register()
    servers = ";".join(f"kafka://{host}" for host in (settings.broker or "").split(","))
    app = faust.App(
        settings.app_id,
        broker=servers,
        store="memory://",
        autodiscover=False,
        web_enabled=False,
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
    ingest.register(app, settings)
    return app
