"""`sextant replay`: put a time or offset range of the call topic back on it, for a backfill.

Records are re-produced byte for byte, with their keys, onto the same topic; the workers
apply each messageId once (the call journal keeps every messageId applied), so a replayed
call that was applied before is counted as a duplicate and changes nothing.
The range ends where the topic ended when the replay began, so a replay never reads
back what it wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from sextant.errors import AdminError
from sextant.kafka import (
    Record,
    log_end_offsets,
    offline_consumer,
    started_producer,
    topic_partitions,
)
from sextant.settings import Settings

log = structlog.get_logger()

_IN_FLIGHT = 2000  # records sent before waiting for the broker's acknowledgements
_MAX_IDLE_FETCHES = 60  # half-second fetches that bring nothing before giving up


@dataclass(frozen=True, slots=True)
class Span:
    """What to replay: records from `from_time` (inclusive) to `to_time` (exclusive), or
    offsets `from_offset` to `to_offset` (both inclusive) of one partition."""

    from_time: datetime | None = None
    to_time: datetime | None = None
    partition: int | None = None
    from_offset: int | None = None
    to_offset: int | None = None

    def check(self) -> None:
        """Refuse a span that names no range, or two kinds of range."""
        by_time = self.from_time is not None or self.to_time is not None
        by_offset = self.from_offset is not None or self.to_offset is not None
        if by_time == by_offset:
            raise AdminError("give a time range (--from-time) or an offset range, not both")
        if by_time and self.from_time is None:
            raise AdminError("--from-time is required for a time range")
        if by_offset and (self.partition is None or self.from_offset is None):
            raise AdminError("an offset range needs --partition and --from-offset")
        if self.from_time and self.to_time and self.to_time <= self.from_time:
            raise AdminError("--to-time must be after --from-time")
        if self.from_offset is not None and self.from_offset < 0:
            raise AdminError("--from-offset must be 0 or more")
        if self.to_offset is not None and self.to_offset < (self.from_offset or 0):
            raise AdminError("--to-offset must not be before --from-offset")

    def keeps(self, record: Record) -> bool:
        if self.from_time is None:
            return True
        # Brokers find a time's offset from an index; the record's own time decides.
        after = record.timestamp >= _ms(self.from_time)
        return after and (self.to_time is None or record.timestamp < _ms(self.to_time))


@dataclass
class Replayed:
    """Per partition, the offsets read [start, stop); and how many records went back."""

    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)
    records: int = 0


async def replay(settings: Settings, span: Span, *, dry_run: bool = False) -> Replayed:
    """Re-produce the records of `span` onto the call topic (or only count them)."""
    span.check()
    async with contextlib.AsyncExitStack() as stack:
        consumer = await stack.enter_async_context(offline_consumer(settings))
        producer = None if dry_run else await stack.enter_async_context(started_producer(settings))
        bounds = await _bounds(settings, consumer, settings.kafka_topic, span)
        result = Replayed({tp.partition: b for tp, b in bounds.items()})
        wanted = {tp: b for tp, b in bounds.items() if b[0] < b[1]}
        if wanted:
            result.records = await _copy(consumer, producer, settings.kafka_topic, wanted, span)
        log.info("replayed", records=result.records, dry_run=dry_run)
        return result


async def _bounds(
    settings: Settings, consumer: AIOKafkaConsumer, topic: str, span: Span
) -> dict[TopicPartition, tuple[int, int]]:
    """Each partition's [start, stop) offsets, within what the topic holds now."""
    every = await topic_partitions(consumer, topic)
    if not every:
        raise AdminError(f"no topic {topic!r} on the broker (KAFKA_TOPIC)")
    partitions = [tp for tp in every if span.partition in (None, tp.partition)]
    if not partitions:
        raise AdminError(f"topic {topic!r} has no partition {span.partition}")
    begin = await consumer.beginning_offsets(partitions)
    end = await log_end_offsets(settings, partitions)
    if span.from_time is not None:
        start = await _offsets_at(consumer, partitions, span.from_time, end)
        stop = await _offsets_at(consumer, partitions, span.to_time, end) if span.to_time else end
    else:
        assert span.from_offset is not None
        start = dict.fromkeys(partitions, span.from_offset)
        last = span.to_offset
        stop = {tp: end[tp] if last is None else last + 1 for tp in partitions}
    return {
        tp: (max(start[tp], begin[tp]), min(max(stop[tp], begin[tp]), end[tp])) for tp in partitions
    }


async def _offsets_at(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    moment: datetime,
    end: dict[TopicPartition, int],
) -> dict[TopicPartition, int]:
    """The first offset at or after `moment` per partition; the end where none is."""
    found = await consumer.offsets_for_times(dict.fromkeys(partitions, _ms(moment)))
    offsets = {}
    for tp in partitions:
        hit = found.get(tp)
        # Kafka answers None past the last record; some brokers answer timestamp -1 instead.
        offsets[tp] = end[tp] if hit is None or hit.timestamp < 0 else hit.offset
    return offsets


async def _copy(
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer | None,
    topic: str,
    wanted: dict[TopicPartition, tuple[int, int]],
    span: Span,
) -> int:
    consumer.assign(list(wanted))
    for tp, (start, _) in wanted.items():
        consumer.seek(tp, start)
    copied, pending = 0, list[Awaitable[object]]()
    remaining, idle = set(wanted), 0
    while remaining:
        batch = await consumer.getmany(*remaining, timeout_ms=500)
        idle = 0 if batch else idle + 1
        if idle > _MAX_IDLE_FETCHES:
            raise AdminError(f"the broker sent nothing for a while; stopped after {copied}")
        for tp, records in batch.items():
            stop = wanted[tp][1]
            for record in records:
                if record.offset < stop and span.keeps(record):
                    copied += 1
                    if producer is not None:
                        pending.append(await _resend(producer, topic, record))
            if len(pending) >= _IN_FLIGHT:
                await asyncio.gather(*pending)
                pending.clear()
        remaining = {tp for tp in remaining if await consumer.position(tp) < wanted[tp][1]}
    await asyncio.gather(*pending)
    return copied


async def _resend(producer: AIOKafkaProducer, topic: str, record: Record) -> Awaitable[object]:
    origin = f"{record.topic}/{record.partition}/{record.offset}".encode()
    headers = [*record.headers, ("replayed-from", origin)]
    ack: Awaitable[object] = await producer.send(
        topic, record.value, key=record.key, headers=headers
    )
    return ack


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
