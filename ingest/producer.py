"""Publishing accepted calls: the answer waits for the broker's acknowledgement, or a deadline."""

from __future__ import annotations

import asyncio
import functools
import time
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
# Small requests share the producer's lingering batches with other requests; large ones
# build their own per partition, which costs far less per call than `send()`.
_OWN_BATCH_FROM = 16


@functools.lru_cache(maxsize=65536)
def _partition(key: bytes, partitions: tuple[int, ...]) -> int:
    """Kafka's default partitioner; aiokafka's murmur2 is pure Python and keys repeat."""
    return int(_default_partitioner(key, list(partitions), list(partitions)))


_default_partitioner = DefaultPartitioner()


class Publisher:
    def __init__(self, settings: Settings, metrics: IngestMetrics) -> None:
        self._settings = settings
        self._topic = settings.kafka_topic
        self._deadline = settings.broker_ack_timeout
        self._metrics = metrics
        self._producer = make_producer(settings)
        self.broker_ok = False

    async def start(self) -> None:
        await self._producer.start()
        self._set_broker_ok(True)

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, records: list[tuple[bytes, bytes]]) -> None:
        """Return once the broker has every record; raise Unavailable past the deadline."""
        if not records:
            return
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._deadline):
                if len(records) < _OWN_BATCH_FROM:
                    acks = [await self._producer.send(self._topic, v, key=k) for k, v in records]
                else:
                    acks = await self._send_batches(records)
                await asyncio.gather(*acks)
        except (TimeoutError, KafkaError) as e:
            log.warning("publish_failed", error=repr(e), calls=len(records))
            self._set_broker_ok(False)
            raise Unavailable("the broker did not acknowledge in time; retry later") from e
        self._metrics.broker_ack_seconds.observe(time.perf_counter() - started)

    async def _send_batches(self, records: list[tuple[bytes, bytes]]) -> list[asyncio.Future[Any]]:
        """One record batch per partition rather than one `send()` per call.

        Partitions are chosen by Kafka's default partitioner (murmur2 of the key), the same
        as `send()` and the Java client would choose, so a key always lands on one partition.
        """
        partitions = tuple(sorted(await self._producer.partitions_for(self._topic)))
        builders: dict[int, BatchBuilder] = {}
        acks = []
        for key, value in records:
            partition = _partition(key, partitions)
            builder = builders.get(partition)
            if builder is None:
                builder = builders[partition] = self._producer.create_batch()
            if builder.append(key=key, value=value, timestamp=None) is None:  # full
                acks.append(await self._send(builder, partition))
                builder = builders[partition] = self._producer.create_batch()
                builder.append(key=key, value=value, timestamp=None)
        for partition, builder in builders.items():
            acks.append(await self._send(builder, partition))
        return acks

    async def _send(self, builder: BatchBuilder, partition: int) -> asyncio.Future[Any]:
        builder.close()
        while True:
            try:
                ack: asyncio.Future[Any] = await self._producer.send_batch(
                    builder, self._topic, partition=partition
                )
                return ack
            except KafkaTimeoutError:
                # aiokafka's add_batch takes the whole elapsed time off its wait on every
                # turn of its loop, so under contention it gives up within milliseconds.
                # The batch was not queued; queue it again until our own deadline.
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
