"""Kafka clients configured the same way for every process, and the few admin steps that
processes and operator tools share (topics, reading a topic without joining a group)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord, TopicPartition

from sextant.settings import Settings

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"


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


@contextlib.asynccontextmanager
async def started_producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    producer = make_producer(settings)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


@contextlib.asynccontextmanager
async def admin_client(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.require_kafka())
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def offline_consumer(
    settings: Settings, group_id: str | None = None
) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer that reads partitions it is assigned by hand; with `group_id` it may commit
    where it got to, but it never joins that group's rebalances."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.require_kafka(),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The topic's partitions in order, from fresh metadata; empty if there is no such topic."""
    await consumer.topics()  # refreshes metadata for every topic
    ids = consumer.partitions_for_topic(topic) or set()
    return [TopicPartition(topic, p) for p in sorted(ids)]


# How long a read past the reported end waits for a broker that has nothing more.
_END_PROBE_WAIT_MS = 100


async def log_end_offsets(
    settings: Settings, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """Where each partition ends: one past its last record.

    Apache Kafka answers ListOffsets with that (the high-water mark). The embedded Tansu
    broker answers with the first offset of the last record batch, short by the rest of
    that batch, so the records from the reported end on are read to find the true end.
    On Kafka that read finds nothing and costs one short fetch.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.require_kafka(),
        enable_auto_commit=False,
        fetch_max_wait_ms=_END_PROBE_WAIT_MS,
    )
    await consumer.start()
    try:
        end: dict[TopicPartition, int] = dict(await consumer.end_offsets(partitions))
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, end[tp])
        while batch := await consumer.getmany(*partitions, timeout_ms=2 * _END_PROBE_WAIT_MS):
            for tp, records in batch.items():
                end[tp] = max(end[tp], records[-1].offset + 1)
        return end
    finally:
        await consumer.stop()


async def read_to_end(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], end: dict[TopicPartition, int]
) -> list[Record]:
    """Every record from each partition's position up to `end` (`log_end_offsets`),
    oldest first."""
    records: list[Record] = []

    async def behind() -> bool:
        return any([await consumer.position(tp) < end[tp] for tp in partitions])

    while await behind():
        batch = await consumer.getmany(*partitions, timeout_ms=500)
        for tp, part in batch.items():
            records.extend(r for r in part if r.offset < end[tp])
    return sorted(records, key=lambda r: (r.timestamp, r.partition, r.offset))


async def ensure_topics(settings: Settings) -> None:
    """Create the call and DLQ topics if missing; existing ones are left as they are."""
    async with admin_client(settings) as admin:
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
