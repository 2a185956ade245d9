"""Chaos: workers killed at random and Postgres stopped mid-stream change nothing in the end."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from ingest.app import running
from ops.devstack import free_port
from ops.keys import create_key
from ops.migrate import migrate
from sextant.calls import decode_call
from sextant.db import create_pool
from sextant.settings import Settings
from tests.support.calls import worker_process
from tests.support.dumps import dump, visible
from tests.support.helpers import basic_auth, eventually, read_topic
from tests.support.services import PausablePostgres
from tests.worker.test_order_independence import OWNER, USERS
from worker.unit_of_work import apply_calls

pytestmark = pytest.mark.slow

CALLS, PER_REQUEST = 1200, 40


def stream(seed: int) -> list[dict[str, Any]]:
    """A realistic mix over a few people, with merges and a couple of deletes."""
    rng = random.Random(seed)
    start = datetime.now(UTC)
    people = [*USERS, *OWNER]  # userIds and their anonymous ids
    messages = []
    for i in range(CALLS):
        who_key = rng.choice(people)
        who: dict[str, str] = {"userId": who_key} if who_key in USERS else {"anonymousId": who_key}
        roll = rng.random()
        if roll < 0.45:
            message = {
                "type": "track",
                "event": rng.choice(["Signed Up", "Clicked"]),
                "properties": {"n": rng.randint(0, 9)},
            }
        elif roll < 0.7:
            message = {"type": "page", "name": rng.choice(["Home", "Docs"])}
        elif roll < 0.85:
            message = {"type": "identify", "traits": {"plan": rng.choice(["a", "b", "c"])}}
            if "anonymousId" in who:
                who["userId"] = OWNER[who["anonymousId"]]
        elif roll < 0.99:
            message = {
                "type": "group",
                "groupId": rng.choice(["g1", "g2"]),
                "traits": {"seats": rng.randint(1, 50)},
            }
        else:
            message, who = {"type": "delete"}, {"userId": rng.choice(sorted(USERS))}
        message.update(who)
        message["messageId"] = f"c{i:05d}"
        # Within the receivers' tolerance of now, in any order: deletes go by receipt, so
        # calls older than a delete's receipt would all be ignored after it.
        moment = start + timedelta(seconds=rng.randint(0, 599))
        message["timestamp"] = moment.isoformat().replace("+00:00", "Z")
        messages.append(message)
    return messages


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[PausablePostgres]:
    """A Postgres of this test's own, to stop and start."""
    postgres = PausablePostgres(tmp_path / "pg")
    yield postgres
    postgres.stop()


async def committed(settings: Settings) -> dict[int, int | None]:
    """The group's committed offset per partition, read as a non-member of the group."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.require_kafka(),
        group_id=settings.kafka_consumer_group,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partitions = range(settings.kafka_topic_partitions)
        return {
            p: await consumer.committed(TopicPartition(settings.kafka_topic, p)) for p in partitions
        }
    finally:
        await consumer.stop()


async def ready(http: aiohttp.ClientSession, port: int) -> bool | None:
    try:
        async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return None  # not listening (yet, or any more)


async def test_killed_workers_and_a_postgres_outage_leave_the_rows_of_a_clean_run(
    services: Settings, private_postgres: PausablePostgres, http: aiohttp.ClientSession
) -> None:
    """Two workers, SIGKILLed at random moments and restarted, and Postgres stopped and
    started once mid-stream: the rows equal a clean run's. While Postgres is down the
    workers report not-ready and commit no offsets."""
    database_url = private_postgres.start()
    topic = f"chaos.{uuid.uuid4().hex[:8]}"
    settings = dataclasses.replace(
        services,
        database_url=database_url,
        kafka_topic=topic,
        kafka_dlq_topic=f"{topic}.dlq",
        kafka_consumer_group=f"{topic}.workers",
        kafka_topic_partitions=4,
    )
    pool = await create_pool(settings, max_size=2)
    async with pool.acquire() as conn:
        await migrate(conn)
        chaotic = await create_key(conn, "chaotic")
        clean = await create_key(conn, "clean")
    messages = stream(seed=20261122)
    rng = random.Random(7)
    ports = [free_port(), free_port()]
    procs: list[subprocess.Popen[bytes]] = [worker_process(settings, p) for p in ports]
    receiver_port = free_port()
    try:
        async with running(settings, "127.0.0.1", receiver_port):
            chunks = [messages[i : i + PER_REQUEST] for i in range(0, CALLS, PER_REQUEST)]
            outage_at = len(chunks) // 2
            kills = set(rng.sample(range(2, len(chunks) - 2), 4)) - {outage_at}

            async def send(chunk: list[dict[str, Any]]) -> None:
                async with http.post(
                    f"http://127.0.0.1:{receiver_port}/v1/batch",
                    json={"batch": chunk},
                    headers=basic_auth(chaotic.api_key),
                ) as response:
                    assert response.status == 200, await response.text()

            for n, chunk in enumerate(chunks):
                if n == outage_at:
                    # Calls keep arriving while Postgres is down (receivers cache keys).
                    await outage(private_postgres, settings, http, ports, send(chunk))
                else:
                    await send(chunk)
                if n in kills:
                    victim = rng.randrange(2)
                    procs[victim].kill()
                    procs[victim].wait()
                    procs[victim] = worker_process(settings, ports[victim])
                await asyncio.sleep(0.05)

            async def all_applied() -> bool:
                try:
                    async with pool.acquire() as conn:
                        done = await conn.fetchval(
                            "SELECT count(*) FROM call_journal WHERE workspace_id = $1",
                            chaotic.workspace_id,
                        )
                except (OSError, asyncpg.PostgresError):
                    return False
                return int(done) == CALLS

            await eventually(all_applied, timeout=120)
        # The clean run: each call once, in call-time order, as the receiver stamped it
        # (deletes go by receipt too), in the clean workspace.
        records = [msgspec.json.decode(r.value) for r in await read_topic(settings, CALLS)]
        for record in records:
            record["sextant"].update(workspaceId=clean.workspace_id, connectorId=clean.connector_id)
        ordered = sorted(records, key=lambda m: (m["sextant"]["callTime"], m["messageId"]))
        async with pool.acquire() as conn:
            for i in range(0, CALLS, 100):
                chunk = ordered[i : i + 100]
                await apply_calls(conn, [decode_call(msgspec.json.encode(m)) for m in chunk])
            expected = visible(await dump(conn, clean.workspace_id))
            actual = visible(await dump(conn, chaotic.workspace_id))
        for table in expected:
            missing = set(expected[table]) - set(actual[table])
            extra = set(actual[table]) - set(expected[table])
            assert (table, sorted(missing)[:3], sorted(extra)[:3]) == (table, [], [])
        assert sum(len(rows) for rows in actual.values()) > 100  # the run did build rows
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        await pool.close()


async def outage(
    postgres: PausablePostgres,
    settings: Settings,
    http: aiohttp.ClientSession,
    ports: list[int],
    sending: Any,
) -> None:
    """Stop Postgres while calls keep coming; check the workers notice and hold offsets."""
    postgres.pause()
    try:
        before = await committed(settings)
        await sending

        async def workers_not_ready() -> bool:
            states = [await ready(http, port) for port in ports]
            return all(state is False for state in states)

        await eventually(workers_not_ready, timeout=30)
        await asyncio.sleep(1.0)
        assert await committed(settings) == before
    finally:
        postgres.resume()
