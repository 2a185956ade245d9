"""Forgetting what is kept only for a while, in the background, a small slice at a time:
applied messageIds (`KEEP_DAYS`) and ingestion warnings (`WARNINGS_KEEP_DAYS`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

from sextant.db import Conn
from worker.sql import ledger, warnings

log = structlog.get_logger()

KEEP_DAYS = 8  # messageIds: at least 7 days are promised
WARNINGS_KEEP_DAYS = 30
_SLICE = 5000  # rows per delete: short transactions that never hold ingestion up
_PAUSE = 60.0

Prune = Callable[[Conn, int, int], Awaitable[int]]


async def prune_once(
    pool: asyncpg.Pool, keep_days: int = KEEP_DAYS, warnings_keep_days: int = WARNINGS_KEEP_DAYS
) -> int:
    """Delete every expired row, one slice per transaction; returns how many."""
    total = 0
    async with pool.acquire() as conn:
        for prune, days in ((ledger.prune, keep_days), (warnings.prune, warnings_keep_days)):
            total += await _in_slices(conn, prune, days)
    return total


async def _in_slices(conn: Conn, prune: Prune, keep_days: int) -> int:
    total = 0
    for _ in range(10_000):  # bounded: a round never runs away
        deleted = await prune(conn, keep_days, _SLICE)
        total += deleted
        if deleted < _SLICE:
            break
    return total


async def prune_forever(pool: asyncpg.Pool) -> None:
    """Delete expired rows in slices, every minute; a failure waits for the next round."""
    while True:
        try:
            deleted = await prune_once(pool)
            if deleted:
                log.info("expired_rows_pruned", deleted=deleted)
        except (OSError, asyncpg.PostgresError) as e:
            log.warning("prune_failed", error=str(e))
        await asyncio.sleep(_PAUSE)
