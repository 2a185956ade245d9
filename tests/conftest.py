"""Real services for every test that needs one: Postgres and a Kafka-protocol broker.

Both start once per session (embedded, unless DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS
name real ones). Each test gets its own workspace and its own topics, so tests never
see each other's data.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from ingest.app import running
from ops.devstack import embedded_services, free_port
from ops.keys import CreatedKey, create_key
from ops.migrate import migrate
from sextant.db import connection, create_pool, init_connection
from sextant.kafka import make_producer
from sextant.settings import Settings
from tests.support.services import PausableBroker
from worker.consumer import Worker
from worker.service import worker_resources


@pytest.fixture(scope="session")
def services() -> Iterator[Settings]:
    """Settings pointing at the session's Postgres and broker, migrated."""
    with embedded_services(Settings.from_env()) as settings:

        async def prepare() -> None:
            async with connection(settings) as conn:
                await migrate(conn)

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
    """A connection that reads jsonb as Python values, as the processes' connections do."""
    conn = await asyncpg.connect(settings.require_database_url())
    await init_connection(conn)
    yield conn
    await conn.close()


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings, max_size=8)
    yield pool
    await pool.close()


@pytest.fixture
async def workspace(db: asyncpg.Connection) -> CreatedKey:
    """A workspace of this test's own, with a connector and an API key."""
    return await create_key(db, f"ws-{uuid.uuid4().hex[:10]}")


@pytest.fixture
async def receiver(settings: Settings) -> AsyncIterator[str]:
    """A running receiver; yields its base URL."""
    port = free_port()
    async with running(settings, "127.0.0.1", port):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
async def start_worker(settings: Settings) -> AsyncIterator[Callable[[], Awaitable[Worker]]]:
    """Start in-process workers of the test's consumer group; all stop at teardown."""
    running_workers: list[tuple[Worker, asyncio.Task[None], Any]] = []

    async def start() -> Worker:
        resources = worker_resources(dataclasses.replace(settings, worker_port=0))
        worker = await resources.__aenter__()
        running_workers.append((worker, asyncio.create_task(worker.run()), resources))
        return worker

    yield start
    for worker, task, resources in reversed(running_workers):
        worker.stopping.set()
        await task
        await resources.__aexit__(None, None, None)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PausableBroker]:
    """A broker of this test's own, for tests that stop or freeze it."""
    broker = PausableBroker(tmp_path / "broker.log")
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
