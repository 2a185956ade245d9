"""A partition's lane: requests share open batches, batches leave in order, late ones expire."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.producer.message_accumulator import BatchBuilder

from ingest.producer import _PartitionQueue


def small_batch() -> BatchBuilder:
    return BatchBuilder(300, 0)  # a few 50-byte records fill it


async def test_records_share_the_open_batch_until_it_is_full() -> None:
    """Records appended while a batch is open wait on one future; a full batch is closed
    and the next record starts a new one."""
    lane = _PartitionQueue()
    acks = [lane.append(b"k", b"v" * 50, small_batch, 3.0) for _ in range(8)]
    assert acks[0] is acks[1]
    assert len(set(acks)) >= 2
    assert len(lane.closed) == len(set(acks)) - 1


async def test_batches_are_taken_oldest_first_then_the_open_one() -> None:
    """Closed batches leave in the order they filled; the open one goes last; then nothing."""
    lane = _PartitionQueue()
    acks = [lane.append(b"k", str(i).encode() * 50, small_batch, 3.0) for i in range(8)]
    taken = []
    while (batch := lane.take()) is not None:
        taken.append(batch.acked)
    assert taken == list(dict.fromkeys(acks))
    assert lane.open is None


async def test_a_batch_past_its_deadline_fails_and_is_not_sent() -> None:
    """The future of a batch nobody sent within the deadline fails with a timeout, and the
    lane skips the batch rather than sending calls whose requests were already refused."""
    lane = _PartitionQueue()
    ack = lane.append(b"k", b"v", small_batch, 0.01)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(ack), 1)
    assert lane.take() is None


async def test_a_record_after_expiry_starts_a_new_batch() -> None:
    """Once the open batch has expired, the next record does not join it (its request
    would be refused at once): it starts a fresh batch with a deadline of its own."""
    lane = _PartitionQueue()
    expired = lane.append(b"k", b"v", small_batch, 0.01)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(expired), 1)
    fresh = lane.append(b"k", b"w", small_batch, 3.0)
    assert fresh is not expired
    assert not fresh.done()
    taken = lane.take()
    assert taken is not None
    assert (taken.acked, taken.records.record_count()) == (fresh, 1)
