"""Worker test fixtures: a pool, calls stamped as the receiver stamps them, in-process workers."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import msgspec
import pytest

from sextant.admin import CreatedKey
from sextant.db import create_pool, init_connection
from sextant.settings import Settings
from tests.helpers import service_env
from worker.apply import Outcome, apply_calls
from worker.calls import AnyCall, decode_call
from worker.runner import Worker, worker_resources

_ids = itertools.count()


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings, max_size=8)
    yield pool
    await pool.close()


def stamped(workspace: CreatedKey, **message: Any) -> dict[str, Any]:
    """A message as the receiver writes it to Kafka."""
    message.setdefault("messageId", f"m-{next(_ids)}")
    message.setdefault("receivedAt", "2026-01-01T00:00:00.000Z")
    message["sextant"] = {
        "workspaceId": workspace.workspace_id,
        "connectorId": workspace.connector_id,
    }
    return message


def call(workspace: CreatedKey, **message: Any) -> AnyCall:
    return decode_call(msgspec.json.encode(stamped(workspace, **message)))


Apply = Callable[..., Awaitable[Outcome]]


@pytest.fixture
def apply(pool: asyncpg.Pool, workspace: CreatedKey) -> Apply:
    """Apply calls (given as message dicts) directly, in one batch, as a worker would."""

    async def run(*messages: dict[str, Any]) -> Outcome:
        calls = [call(workspace, **m) for m in messages]
        async with pool.acquire() as conn:
            return await apply_calls(conn, calls)

    return run


@pytest.fixture
async def start_worker(settings: Settings) -> AsyncIterator[Callable[[], Awaitable[Worker]]]:
    """Start in-process workers of the test's consumer group; all stop at teardown."""
    running: list[tuple[Worker, asyncio.Task[None], Any]] = []

    async def start() -> Worker:
        resources = worker_resources(dataclasses.replace(settings, worker_port=0))
        worker = await resources.__aenter__()
        running.append((worker, asyncio.create_task(worker.run()), resources))
        return worker

    yield start
    for worker, task, resources in reversed(running):
        worker.stopping.set()
        await task
        await resources.__aexit__(None, None, None)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A connection that reads jsonb as Python values, as the worker's do."""
    conn = await asyncpg.connect(settings.require_database_url())
    await init_connection(conn)
    yield conn
    await conn.close()


def worker_process(settings: Settings, port: int = 0) -> subprocess.Popen[bytes]:
    """`sextant work` as its own process, configured only through the environment."""
    env = service_env(settings, WORKER_PORT=str(port), WORKER_BATCH_SIZE="200")
    return subprocess.Popen([sys.executable, "-m", "sextant", "work"], env=env)
