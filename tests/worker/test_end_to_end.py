"""Receiver, Kafka and workers together: nothing lost, nothing applied twice."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Awaitable, Callable, Iterator

import aiohttp
import asyncpg
import msgspec
import pytest
from aiokafka import AIOKafkaProducer
from segment.analytics.client import Client

from ops.dlq import list_dead_letters
from ops.keys import CreatedKey
from sextant.settings import Settings
from tests.support.calls import stamped, worker_process
from tests.support.helpers import basic_auth, eventually
from worker.consumer import Worker

pytestmark = pytest.mark.slow


async def test_segment_library_calls_land_as_rows_with_two_workers(
    receiver: str,
    workspace: CreatedKey,
    db: asyncpg.Connection,
    settings: Settings,
    start_worker: Callable[[], Awaitable[Worker]],
) -> None:
    """Calls from segment-analytics-python become rows; two workers split the partitions."""
    first, second = await start_worker(), await start_worker()

    async def split() -> bool:
        a, b = first.consumer.assignment(), second.consumer.assignment()
        return bool(a) and bool(b) and not a & b and len(a | b) == settings.kafka_topic_partitions

    await eventually(split)
    errors: list[Exception] = []
    client = Client(
        write_key=workspace.api_key,
        host=receiver,
        sync_mode=True,
        on_error=lambda e, batch: errors.append(e),
    )

    def send() -> None:
        client.identify("u1", {"email": "peter@initech.com", "plan": "pro"}, anonymous_id="a1")
        client.track("u1", "User Registered", {"plan": "Pro Annual"})
        client.page("u1", "Docs", "Install", {"url": "https://initech.com/docs"})
        client.group("u1", "g1", {"name": "Initech", "employees": 329})
        client.alias("a2", "u1")
        client.track(anonymous_id="a2", event="Before Alias")

    await asyncio.to_thread(send)

    async def landed() -> bool:
        row = await db.fetchrow(
            """SELECT (SELECT count(*) FROM users WHERE workspace_id = $1) AS users,
                      (SELECT count(*) FROM events WHERE workspace_id = $1) AS events,
                      (SELECT count(*) FROM page_views WHERE workspace_id = $1) AS views,
                      (SELECT count(*) FROM account_users WHERE workspace_id = $1) AS members,
                      (SELECT count(*) FROM anonymous_ids WHERE workspace_id = $1) AS anons""",
            workspace.workspace_id,
        )
        return tuple(row) == (1, 2, 1, 1, 2)

    await eventually(landed)
    user = await db.fetchrow(
        "SELECT user_id, email, page_views, traits FROM users WHERE workspace_id = $1",
        workspace.workspace_id,
    )
    assert errors == []
    assert tuple(user) == ("u1", "peter@initech.com", 1, {"plan": "pro"})


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


async def test_workers_stopped_and_killed_mid_stream_lose_and_double_nothing(
    receiver: str,
    workspace: CreatedKey,
    db: asyncpg.Connection,
    settings: Settings,
    http: aiohttp.ClientSession,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    """SIGTERM one worker and SIGKILL another mid-stream: page_views and events come out exact."""
    processes += [worker_process(settings), worker_process(settings)]
    users, batches, per_batch = 40, 60, 50
    sent_pages = sent_tracks = 0

    async def send(batch_no: int) -> None:
        nonlocal sent_pages, sent_tracks
        calls = []
        for i in range(per_batch):
            user = f"u{(batch_no * per_batch + i) % users}"
            if i % 2:
                calls.append({"type": "page", "userId": user, "name": "Home"})
            else:
                calls.append({"type": "track", "userId": user, "event": "Tick"})
            calls[-1]["messageId"] = f"b{batch_no}-{i}"
        async with http.post(
            f"{receiver}/v1/batch", json={"batch": calls}, headers=basic_auth(workspace.api_key)
        ) as response:
            assert response.status == 200
        sent_pages += per_batch // 2
        sent_tracks += per_batch - per_batch // 2

    async def totals() -> tuple[int, int]:
        row = await db.fetchrow(
            "SELECT (SELECT coalesce(sum(page_views), 0) FROM users WHERE workspace_id = $1),"
            "       (SELECT count(*) FROM events WHERE workspace_id = $1)",
            workspace.workspace_id,
        )
        return int(row[0]), int(row[1])

    async def started() -> bool:
        return await totals() != (0, 0)

    await send(0)
    await eventually(started)  # both workers are up and consuming
    for batch_no in range(1, batches):
        await send(batch_no)
        if batch_no == batches // 3:
            processes[0].send_signal(signal.SIGTERM)  # drains its batch and leaves
        if batch_no == batches // 2:
            processes[1].kill()  # dies wherever it is
            processes.append(worker_process(settings))
        await asyncio.sleep(0.02)
    assert processes[0].wait(30) == 0

    async def complete() -> bool:
        return await totals() == (sent_pages, sent_tracks)

    await eventually(complete, timeout=90)
    await asyncio.sleep(2)  # anything replayed twice would show up now
    assert await totals() == (sent_pages, sent_tracks)
    assert (
        await db.fetchval(
            "SELECT count(*) FROM page_views WHERE workspace_id = $1", workspace.workspace_id
        )
        == sent_pages
    )


async def test_poison_messages_go_to_the_dlq_and_the_partition_moves_on(
    workspace: CreatedKey,
    db: asyncpg.Connection,
    settings: Settings,
    producer: AIOKafkaProducer,
    start_worker: Callable[[], Awaitable[Worker]],
) -> None:
    """An undecodable message and a contract violation are dead-lettered with their reason;
    the calls after them on the same partition are applied."""
    key = f"{workspace.workspace_id}:u1".encode()
    bad_contract = stamped(workspace, type="track", userId="u1", event={"not": "a string"})
    good = [stamped(workspace, type="page", userId="u1") for _ in range(3)]
    for value in [b"{not json", msgspec.json.encode(bad_contract)] + [
        msgspec.json.encode(g) for g in good
    ]:
        await producer.send_and_wait(settings.kafka_topic, value, key=key)
    await start_worker()

    async def applied() -> bool:
        views = await db.fetchval(
            "SELECT page_views FROM users WHERE workspace_id = $1 AND user_id = 'u1'",
            workspace.workspace_id,
        )
        return views == 3

    await eventually(applied)
    letters = await list_dead_letters(settings)
    assert [letter.value for letter in letters] == [b"{not json", msgspec.json.encode(bad_contract)]
    assert "undecodable" in letters[0].reason
    assert "event" in letters[1].reason
