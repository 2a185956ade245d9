"""Real services for every test that needs one: Postgres and a Kafka-protocol broker.

Both start once per session (embedded, unless DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS
name real ones). Each test gets its own workspace and its own topics, so tests never
see each other's data.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from ingest.app import running
from sextant import admin
from sextant.devstack import EmbeddedBroker, embedded_services, free_port
from sextant.kafka import make_producer
from sextant.migrate import migrate
from sextant.settings import Settings


@pytest.fixture(scope="session")
def services() -> Iterator[Settings]:
    """Settings pointing at the session's Postgres and broker, migrated."""
    with embedded_services(Settings.from_env()) as settings:

        async def prepare() -> None:
            conn = await asyncpg.connect(settings.require_database_url())
            try:
                await migrate(conn)
            finally:
                await conn.close()

        asyncio.run(prepare())
        yield dataclasses.replace(settings, log_level="warning", log_format="console")


@pytest.fixture
def settings(services: Settings) -> Settings:
    """The session's services with topics of this test's own."""
    topic = f"test.{uuid.uuid4().hex[:12]}"
    return dataclasses.replace(
        services,
        kafka_topic=topic,
        kafka_dlq_topic=f"{topic}.dlq",
        kafka_topic_partitions=4,
        kafka_consumer_group=f"{topic}.workers",
        port=0,
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(settings.require_database_url())
    yield conn
    await conn.close()


@pytest.fixture
async def workspace(db: asyncpg.Connection) -> admin.CreatedKey:
    """A workspace of this test's own, with a connector and an API key."""
    return await admin.create_key(db, f"ws-{uuid.uuid4().hex[:10]}")


@pytest.fixture
async def receiver(settings: Settings) -> AsyncIterator[str]:
    """A running receiver; yields its base URL."""
    port = free_port()
    async with running(settings, "127.0.0.1", port):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A broker of this test's own, for tests that stop or freeze it."""
    broker = EmbeddedBroker(tmp_path / "broker.log")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    """A producer on the test's broker, for writing records the receiver would not."""
    producer = make_producer(settings)
    await producer.start()
    yield producer
    await producer.stop()
