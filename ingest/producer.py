"""Publishing accepted calls: the answer waits for the broker's acknowledgement, or a deadline."""

from __future__ import annotations

import asyncio
import time

import structlog
from aiokafka.errors import KafkaError

from ingest.metrics import IngestMetrics
from sextant.errors import Unavailable
from sextant.kafka import make_producer
from sextant.settings import Settings

log = structlog.get_logger()

_PROBE_INTERVAL = 1.0


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
                acks = [
                    await self._producer.send(self._topic, value, key=key) for key, value in records
                ]
                await asyncio.gather(*acks)
        except (TimeoutError, KafkaError) as e:
            self._set_broker_ok(False)
            raise Unavailable("the broker did not acknowledge in time; retry later") from e
        self._metrics.broker_ack_seconds.observe(time.perf_counter() - started)

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
