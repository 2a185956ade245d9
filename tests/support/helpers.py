"""Helpers shared by the tests: reading a topic, authenticating, waiting, environments."""

from __future__ import annotations

import asyncio
import base64
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from sextant.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# For `make` run by tests: STAMP emptied, so make does not reinstall the package; the suite
# already runs from the installed environment, whose scripts BIN names.
MAKE_VARS = ("STAMP=", f"BIN={Path(sys.executable).parent}")


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


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    """Poll `check` until it holds; fail with the timeout otherwise."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        await asyncio.sleep(0.1)


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment an operator would set to reach this test's services and topics."""
    return settings.child_env(**{"LOG_LEVEL": "warning", **extra})
