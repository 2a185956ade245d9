"""End to end: calls/s from the first request to the last call applied, next to the
plainest batched upsert of the same rows on the same Postgres (the ceiling), and the CPU
time every process spent a call in each."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import time
import uuid
from typing import Any

import aiohttp
import asyncpg
import msgspec

from bench.calls import USERS, Population, realistic_call, skewed, uniform
from bench.cpu import Accounting
from bench.processes import process, service_env, wait_http, worker_processes
from bench.receiver import basic_auth
from ops import keys as admin
from ops.devstack import free_port
from sextant.db import create_pool
from sextant.settings import Settings

E2E_CALLS = int(os.environ.get("BENCH_E2E_CALLS", "60000"))
E2E_WARMUP = 5000
POPULATIONS: dict[str, Population] = {"uniform": uniform, "skewed": skewed}


def batch_body(calls: list[dict[str, Any]]) -> bytes:
    return msgspec.json.encode({"batch": calls})


@dataclasses.dataclass(frozen=True)
class Run:
    calls_s: float
    cpu_us_per_call: dict[str, float]  # by kind of process: postgres, workers, receiver...


def _per_call(spent: dict[str, float], calls: int) -> dict[str, float]:
    return {kind: 1e6 * seconds / calls for kind, seconds in spent.items()}


async def upsert_ceiling(settings: Settings, calls: int = 60_000) -> Run:
    """Calls/s for the plainest batched write of users and events on the same Postgres."""
    rng = random.Random(2)
    conn = await asyncpg.connect(settings.require_database_url())
    try:
        ws = await admin.create_key(conn, f"ceiling-{uuid.uuid4().hex[:8]}")
        cpu = Accounting(settings, {})
        started = time.perf_counter()
        for start in range(0, calls, 1000):
            users = sorted({f"user-{rng.randrange(USERS)}" for _ in range(1000)})
            async with conn.transaction():
                rows = await conn.fetch(
                    """INSERT INTO users (workspace_id, user_id, email)
                       SELECT $1, u, u || '@initech.com' FROM unnest($2::text[]) u
                       ON CONFLICT (workspace_id, user_id) DO UPDATE SET email = EXCLUDED.email
                       RETURNING id""",
                    ws.workspace_id,
                    users,
                )
                pks = [r["id"] for r in rows]
                await conn.execute(
                    """INSERT INTO events (workspace_id, message_id, user_pk, name, properties,
                                           occurred_at, received_at)
                       SELECT $1, m, p, 'Clicked', '{"plan":"pro"}', now(), now()
                         FROM unnest($2::text[], $3::bigint[]) AS x (m, p)""",
                    ws.workspace_id,
                    [f"c{start + i}" for i in range(1000)],
                    [pks[i % len(pks)] for i in range(1000)],
                )
        return Run(calls / (time.perf_counter() - started), _per_call(cpu.spent(), calls))
    finally:
        await conn.close()


async def send_all(url: str, key: str, bodies: list[bytes], concurrency: int = 8) -> None:
    headers = basic_auth(key)
    queue = list(reversed(bodies))
    async with aiohttp.ClientSession() as http:

        async def sender() -> None:
            while queue:
                body = queue.pop()
                async with http.post(url, data=body, headers=headers) as response:
                    if response.status != 200:
                        raise RuntimeError(f"{response.status}: {await response.text()}")

        await asyncio.gather(*(sender() for _ in range(concurrency)))


async def applied(pool: asyncpg.Pool, workspace_id: int) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM call_journal WHERE workspace_id = $1", workspace_id
        )
    )


def own_topics(settings: Settings, name: str) -> Settings:
    """Topics and a consumer group no other run shares."""
    topic = f"bench.{name}.{uuid.uuid4().hex[:6]}"
    return dataclasses.replace(
        settings,
        kafka_topic=topic,
        kafka_dlq_topic=f"{topic}.dlq",
        kafka_consumer_group=f"{topic}.g",
    )


async def fresh_run(
    settings: Settings, name: str
) -> tuple[Settings, asyncpg.Pool, admin.CreatedKey]:
    """Topics and a consumer group of their own, a pool, and a workspace with a key."""
    run = own_topics(settings, name)
    pool = await create_pool(run, max_size=2)
    async with pool.acquire() as conn:
        ws = await admin.create_key(conn, f"{name}-{uuid.uuid4().hex[:8]}")
    return run, pool, ws


async def bench_end_to_end(settings: Settings, workers: int, population: str) -> Run:
    """Calls/s from the first request to the last call applied, with `workers` workers,
    over the uniform or the skewed population of users.

    A first round of E2E_WARMUP calls is sent and applied before the clock starts, so the
    figure is the sustained rate, not the time a fresh worker takes to open its
    connections and fill its caches.
    """
    run, pool, ws = await fresh_run(settings, f"e2e{workers}{population}")
    rng = random.Random(3)
    users = POPULATIONS[population]
    calls = [realistic_call(rng, i, users) for i in range(E2E_WARMUP + E2E_CALLS)]
    bodies = [batch_body(calls[i : i + 100]) for i in range(0, len(calls), 100)]
    warmup, timed = bodies[: E2E_WARMUP // 100], bodies[E2E_WARMUP // 100 :]
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/batch"
    env = service_env(run, PORT=str(port), HOST="127.0.0.1")
    with process(["-m", "ops", "serve"], env) as receiver:
        wait_http(f"http://127.0.0.1:{port}/readyz")
        with worker_processes(run, workers) as procs:
            await send_all(url, ws.api_key, warmup)
            await _until_applied(pool, ws.workspace_id, E2E_WARMUP)
            cpu = Accounting(run, {"receiver": [receiver.pid], "workers": [p.pid for p in procs]})
            started = time.perf_counter()
            await send_all(url, ws.api_key, timed)
            await _until_applied(pool, ws.workspace_id, E2E_WARMUP + E2E_CALLS)
            seconds = time.perf_counter() - started
            spent = cpu.spent()
    await pool.close()
    return Run(E2E_CALLS / seconds, _per_call(spent, E2E_CALLS))


async def _until_applied(pool: asyncpg.Pool, workspace_id: int, calls: int) -> None:
    while await applied(pool, workspace_id) < calls:
        await asyncio.sleep(0.05)
