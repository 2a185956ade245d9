"""The dead-letter topic: poison messages with their reason, listed and replayed by operators."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, TopicPartition

from sextant.kafka import make_producer
from sextant.settings import Settings


@dataclass(frozen=True, slots=True)
class DeadLetter:
    partition: int
    offset: int
    dead_at: str
    reason: str
    source: str
    key: str | None
    value: bytes


async def dead_letter(
    producer: AIOKafkaProducer, topic: str, record: ConsumerRecord[bytes, bytes], reason: str
) -> None:
    """Send the original bytes with the reason; returns once the broker has them."""
    headers = [
        ("reason", reason.encode()[:4000]),
        ("source", f"{record.topic}/{record.partition}/{record.offset}".encode()),
    ]
    await producer.send_and_wait(topic, record.value, key=record.key, headers=headers)


async def list_dead_letters(settings: Settings, limit: int = 1000) -> list[DeadLetter]:
    """Every dead letter still in the topic, oldest first, up to `limit`."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.require_kafka(), enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = await _partitions(consumer, settings.kafka_dlq_topic)
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found = [_letter(r) for r in await _read_to_end(consumer, partitions)]
        return found[:limit]
    finally:
        await consumer.stop()


async def replay_dead_letters(settings: Settings) -> int:
    """Put dead letters not replayed before back on the main topic; returns how many.

    A consumer group remembers how far replay got, so each dead letter is replayed
    once. Replaying is safe twice anyway: the worker applies each messageId once.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.require_kafka(),
        group_id=f"{settings.kafka_consumer_group}.dlq-replay",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = make_producer(settings)
    await consumer.start()
    await producer.start()
    try:
        partitions = await _partitions(consumer, settings.kafka_dlq_topic)
        if not partitions:
            return 0
        consumer.assign(partitions)
        records = await _read_to_end(consumer, partitions)
        acks = [await producer.send(settings.kafka_topic, r.value, key=r.key) for r in records]
        await asyncio.gather(*acks)
        if records:
            await consumer.commit()
        return len(records)
    finally:
        await producer.stop()
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    await consumer.topics()  # refreshes metadata for every topic
    ids = consumer.partitions_for_topic(topic) or set()
    return [TopicPartition(topic, p) for p in sorted(ids)]


async def _read_to_end(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
) -> list[ConsumerRecord[bytes, bytes]]:
    end = await consumer.end_offsets(partitions)
    records: list[ConsumerRecord[bytes, bytes]] = []

    async def behind() -> bool:
        return any([await consumer.position(tp) < end[tp] for tp in partitions])

    while await behind():
        batch = await consumer.getmany(*partitions, timeout_ms=500)
        for tp, part in batch.items():
            records.extend(r for r in part if r.offset < end[tp])
    return sorted(records, key=lambda r: (r.timestamp, r.partition, r.offset))


def _letter(record: ConsumerRecord[bytes, bytes]) -> DeadLetter:
    headers = {k: v.decode(errors="replace") for k, v in record.headers}
    return DeadLetter(
        partition=record.partition,
        offset=record.offset,
        dead_at=datetime.fromtimestamp(record.timestamp / 1000, UTC).isoformat(timespec="seconds"),
        reason=headers.get("reason", "?"),
        source=headers.get("source", "?"),
        key=record.key.decode(errors="replace") if record.key else None,
        value=record.value,
    )
