"""Kafka clients configured the same way for every process."""

from __future__ import annotations

import contextlib

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from sextant.settings import Settings


def make_producer(settings: Settings) -> AIOKafkaProducer:
    """acks=all: a 200 means every in-sync replica has the call."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.require_kafka(),
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        linger_ms=settings.producer_linger_ms,
        max_batch_size=256 * 1024,
        # Past our own answer deadline a request is only a duplicate in waiting.
        request_timeout_ms=int(settings.broker_ack_timeout * 1000) + 2000,
    )


async def ensure_topics(settings: Settings) -> None:
    """Create the call and DLQ topics if missing; existing ones are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.require_kafka())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name,
                settings.kafka_topic_partitions if name == settings.kafka_topic else 1,
                settings.kafka_replication_factor,
            )
            for name in (settings.kafka_topic, settings.kafka_dlq_topic)
            if name not in existing
        ]
        if wanted:
            # Another pod may create them between our list and our create.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
    finally:
        await admin.close()
