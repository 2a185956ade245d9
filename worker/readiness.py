"""A worker's readiness follows Postgres, whether or not a batch is in hand."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg

_INTERVAL = 1.0
_TIMEOUT = 2.0


async def database_answers(pool: asyncpg.Pool) -> bool:
    try:
        async with asyncio.timeout(_TIMEOUT), pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
    return True


async def probe_database_forever(pool: asyncpg.Pool, set_ready: Callable[[bool], None]) -> None:
    """Check Postgres every second: an idle worker is not ready when it could not apply."""
    while True:
        set_ready(await database_answers(pool))
        await asyncio.sleep(_INTERVAL)
