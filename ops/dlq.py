"""The dead-letter topic as operators see it: dead letters listed with their reasons, and
put back on the call topic once their cause is fixed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from sextant.kafka import (
    Record,
    log_end_offsets,
    offline_consumer,
    read_to_end,
    started_producer,
    topic_partitions,
)
from sextant.settings import Settings
from worker.dead_letters import REASON_HEADER, SOURCE_HEADER


@dataclass(frozen=True, slots=True)
class DeadLetterEntry:
    partition: int
    offset: int
    dead_at: str
    reason: str
    source: str
    key: str | None
    value: bytes

    @property
    def workspace(self) -> str:
        """Keys are `workspace:identity`; the identity (a person) is not shown."""
        return (self.key or "?").partition(":")[0]


async def list_dead_letters(settings: Settings, limit: int = 1000) -> list[DeadLetterEntry]:
    """Every dead letter still in the topic, oldest first, up to `limit`."""
    async with offline_consumer(settings) as consumer:
        partitions = await topic_partitions(consumer, settings.kafka_dlq_topic)
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await log_end_offsets(settings, partitions)
        found = [_entry(r) for r in await read_to_end(consumer, partitions, end)]
        return found[:limit]


async def replay_dead_letters(settings: Settings) -> int:
    """Put dead letters not replayed before back on the main topic; returns how many.

    A consumer group remembers how far replay got, so each dead letter is replayed
    once. Replaying is safe twice anyway: the worker applies each messageId once.
    """
    group = f"{settings.kafka_consumer_group}.dlq-replay"
    async with (
        offline_consumer(settings, group_id=group) as consumer,
        started_producer(settings) as producer,
    ):
        partitions = await topic_partitions(consumer, settings.kafka_dlq_topic)
        if not partitions:
            return 0
        consumer.assign(partitions)
        records = await read_to_end(
            consumer, partitions, await log_end_offsets(settings, partitions)
        )
        acks = [await producer.send(settings.kafka_topic, r.value, key=r.key) for r in records]
        await asyncio.gather(*acks)
        if records:
            await consumer.commit()
        return len(records)


def _entry(record: Record) -> DeadLetterEntry:
    headers = {k: v.decode(errors="replace") for k, v in record.headers}
    return DeadLetterEntry(
        partition=record.partition,
        offset=record.offset,
        dead_at=datetime.fromtimestamp(record.timestamp / 1000, UTC).isoformat(timespec="seconds"),
        reason=headers.get(REASON_HEADER, "?"),
        source=headers.get(SOURCE_HEADER, "?"),
        key=record.key.decode(errors="replace") if record.key else None,
        value=record.value,
    )
