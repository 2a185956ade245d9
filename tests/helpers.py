"""Helpers shared by tests that read what reached Kafka."""

from __future__ import annotations

import asyncio
import base64

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from sextant.settings import Settings


async def read_topic(
    settings: Settings, expected: int, topic: str | None = None, timeout: float = 15.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of the topic from the start, once `expected` have arrived (or the timeout)."""
    topic = topic or settings.kafka_topic
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.require_kafka(),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while len(records) < expected and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(part)
        # A short extra read catches records beyond those expected.
        for part in (await consumer.getmany(timeout_ms=300)).values():
            records.extend(part)
        return records
    finally:
        await consumer.stop()


def basic_auth(key: str) -> dict[str, str]:
    """`Authorization: Basic base64(key + ":")`, as Segment sends it."""
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
