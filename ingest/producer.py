"""Publishing accepted calls: the answer waits for the broker's acknowledgement, or a deadline.

Requests do not send their own record batches. Each partition has a queue: an open record
batch that every request appends its records to, and one flusher that hands closed batches
to the producer one at a time. aiokafka keeps one batch per partition queued and one produce
request per broker in flight, so while one batch travels, the next fills with the calls of
every request that arrived meanwhile (group commit). A batch per request per partition
would carry a single request's calls in each round trip to the broker instead.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka.errors import KafkaError, KafkaTimeoutError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

from ingest.metrics import IngestMetrics
from sextant.errors import Unavailable
from sextant.kafka import make_producer
from sextant.settings import Settings

log = structlog.get_logger()

_PROBE_INTERVAL = 1.0


@functools.lru_cache(maxsize=65536)
def _partition(key: bytes, partitions: tuple[int, ...]) -> int:
    """Kafka's default partitioner; aiokafka's murmur2 is pure Python and keys repeat."""
    return int(_default_partitioner(key, list(partitions), list(partitions)))


_default_partitioner = DefaultPartitioner()


@dataclass(slots=True)
class _RecordBatch:
    """Calls for one partition, and the future every request with a call in it waits on."""

    records: BatchBuilder
    acked: asyncio.Future[None]
    expires_at: float  # loop time: the future fails then, and the batch is not sent


class _PartitionQueue:
    """One partition's calls on their way to the broker.

    A batch's deadline counts from its first call, so no request waits longer than the
    deadline, and a batch that nobody waits for any more is not sent.
    """

    __slots__ = ("closed", "flushing", "open")

    def __init__(self) -> None:
        self.open: _RecordBatch | None = None
        self.closed: collections.deque[_RecordBatch] = collections.deque()
        self.flushing = False

    def append(
        self, key: bytes, value: bytes, new_batch: Callable[[], BatchBuilder], deadline: float
    ) -> asyncio.Future[None]:
        """Add a record to the open batch, closing it first when full; its ack future."""
        batch = self.open
        if batch is not None and not batch.acked.done():  # done here means expired
            if batch.records.append(key=key, value=value, timestamp=None) is not None:
                return batch.acked
            self.closed.append(batch)
        batch = self.open = _start(new_batch(), deadline)
        batch.records.append(key=key, value=value, timestamp=None)  # an empty batch takes one
        return batch.acked

    def take(self) -> _RecordBatch | None:
        """The next batch to send, oldest first, skipping those whose deadline has passed."""
        while self.closed:
            batch = self.closed.popleft()
            if not batch.acked.done():
                return batch
        last, self.open = self.open, None
        return last if last is not None and not last.acked.done() else None


def _start(records: BatchBuilder, deadline: float) -> _RecordBatch:
    loop = asyncio.get_running_loop()
    acked: asyncio.Future[None] = loop.create_future()
    timer = loop.call_later(deadline, _expire, acked, deadline)
    acked.add_done_callback(functools.partial(_settled, timer))
    return _RecordBatch(records, acked, loop.time() + deadline)


def _expire(acked: asyncio.Future[None], deadline: float) -> None:
    if not acked.done():
        acked.set_exception(TimeoutError(f"no acknowledgement within {deadline}s"))


def _settled(timer: asyncio.TimerHandle, acked: asyncio.Future[None]) -> None:
    timer.cancel()
    if not acked.cancelled():
        acked.exception()  # seen: a request that gave up leaves nobody else to read it


def _settle(acked: asyncio.Future[None], ack: asyncio.Future[Any]) -> None:
    """Pass the broker's answer for a batch on to every request waiting on it."""
    if acked.done():
        return
    if ack.cancelled():
        acked.set_exception(KafkaTimeoutError("the batch was cancelled"))
    elif (error := ack.exception()) is not None:
        acked.set_exception(error)
    else:
        acked.set_result(None)


async def _all_acked(acks: set[asyncio.Future[None]]) -> None:
    """Wait for every batch a request's calls went into; raise the first failure.

    The request waits on a future of its own: the batch futures are shared, and a request
    that is cancelled must not cancel them for the others.
    """
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    remaining = len(acks)

    def on_ack(ack: asyncio.Future[None]) -> None:
        nonlocal remaining
        if waiter.done():
            return
        if ack.cancelled():
            waiter.set_exception(KafkaTimeoutError("the batch was cancelled"))
            return
        if (error := ack.exception()) is not None:
            waiter.set_exception(error)
            return
        remaining -= 1
        if remaining == 0:
            waiter.set_result(None)

    for ack in acks:
        ack.add_done_callback(on_ack)
    await waiter


class Publisher:
    """Publishes each request's records through the partition queues and waits for the
    broker's acknowledgement, or fails them at the deadline; readiness follows the broker."""

    def __init__(self, settings: Settings, metrics: IngestMetrics) -> None:
        self._settings = settings
        self._topic = settings.kafka_topic
        self._deadline = settings.broker_ack_timeout
        self._metrics = metrics
        self._producer = make_producer(settings)
        self._partition_ids: tuple[int, ...] = ()
        self._queues: dict[int, _PartitionQueue] = {}
        self._flushers: set[asyncio.Task[None]] = set()
        self.broker_ok = False

    async def start(self) -> None:
        await self._producer.start()
        self._set_broker_ok(True)

    async def stop(self) -> None:
        """Let queued calls reach the broker, then close the producer."""
        if self._flushers:
            await asyncio.wait(self._flushers, timeout=self._deadline)
        await self._producer.stop()

    async def publish(self, records: list[tuple[bytes, bytes]]) -> None:
        """Return once the broker has every record; raise Unavailable past the deadline."""
        if not records:
            return
        started = time.perf_counter()
        try:
            partitions = await self._partitions()
            await _all_acked(self._append(records, partitions))
        except (TimeoutError, KafkaError) as e:
            log.warning("publish_failed", error=repr(e), calls=len(records))
            self._set_broker_ok(False)
            raise Unavailable("the broker did not acknowledge in time; retry later") from e
        self._metrics.broker_ack_seconds.observe(time.perf_counter() - started)

    async def _partitions(self) -> tuple[int, ...]:
        """The topic's partitions, from the producer's metadata once it has them."""
        known = self._producer.client.cluster.partitions_for_topic(self._topic)
        if not known:
            async with asyncio.timeout(self._deadline):
                known = await self._producer.partitions_for(self._topic)
        if not known:
            raise KafkaTimeoutError(f"topic {self._topic} has no partitions yet")
        if len(known) != len(self._partition_ids):  # partitions are only ever added
            self._partition_ids = tuple(sorted(known))
        return self._partition_ids

    def _append(
        self, records: list[tuple[bytes, bytes]], partitions: tuple[int, ...]
    ) -> set[asyncio.Future[None]]:
        """Put each record in its partition's open batch, by Kafka's default partitioner
        (murmur2 of the key, as the Java client chooses), so a key keeps one partition."""
        acks: set[asyncio.Future[None]] = set()
        touched: set[int] = set()
        queues, new_batch, deadline = self._queues, self._producer.create_batch, self._deadline
        for key, value in records:
            partition = _partition(key, partitions)
            queue = queues.get(partition)
            if queue is None:
                queue = queues[partition] = _PartitionQueue()
            acks.add(queue.append(key, value, new_batch, deadline))
            touched.add(partition)
        for partition in touched:
            queue = queues[partition]
            if not queue.flushing:
                queue.flushing = True
                task = asyncio.create_task(self._flush(partition, queue))
                self._flushers.add(task)
                task.add_done_callback(self._flushers.discard)
        return acks

    async def _flush(self, partition: int, queue: _PartitionQueue) -> None:
        """Hand the queue's batches to the producer in order until it is empty."""
        try:
            while (batch := queue.take()) is not None:
                try:
                    ack = await self._send(batch, partition)
                except Exception as e:  # the queue goes on, whatever one batch met
                    if not isinstance(e, TimeoutError | KafkaError):
                        log.exception("batch_not_queued", partition=partition)
                    if not batch.acked.done():
                        batch.acked.set_exception(e)
                    continue
                ack.add_done_callback(functools.partial(_settle, batch.acked))
        finally:
            queue.flushing = False

    async def _send(self, batch: _RecordBatch, partition: int) -> asyncio.Future[Any]:
        """Queue a batch behind the partition's previous one, before the batch expires."""
        batch.records.close()
        async with asyncio.timeout_at(batch.expires_at):
            while True:
                try:
                    ack: asyncio.Future[Any] = await self._producer.send_batch(
                        batch.records, self._topic, partition=partition
                    )
                    return ack
                except KafkaTimeoutError:
                    # aiokafka's add_batch takes the whole elapsed time off its wait on
                    # every turn of its loop, so under contention it gives up within
                    # milliseconds. The batch was not queued; queue it again.
                    await asyncio.sleep(0.001)

    async def probe_forever(self) -> None:
        """Readiness follows whether the broker answers a metadata request."""
        while True:
            try:
                async with asyncio.timeout(_PROBE_INTERVAL):
                    await self._producer.client.fetch_all_metadata()
                self._set_broker_ok(True)
            except (TimeoutError, KafkaError, OSError):
                self._set_broker_ok(False)
            await asyncio.sleep(_PROBE_INTERVAL)

    def _set_broker_ok(self, ok: bool) -> None:
        if ok and not self.broker_ok:
            log.info("broker_reachable")
        elif self.broker_ok and not ok:
            log.warning("broker_unreachable")
        self.broker_ok = ok
        self._metrics.broker_ready.set(1 if ok else 0)
