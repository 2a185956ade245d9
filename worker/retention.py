"""Forgetting what is kept only for a while, in the background, a small slice at a time:
ingestion warnings (`WARNINGS_KEEP_DAYS`). Applied messageIds are kept for good, in the
call journal."""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from worker.sql import warnings

log = structlog.get_logger()

WARNINGS_KEEP_DAYS = 30
_SLICE = 5000  # rows per delete: short transactions that never hold ingestion up
_PAUSE = 60.0


async def prune_once(pool: asyncpg.Pool, keep_days: int = WARNINGS_KEEP_DAYS) -> int:
    """Delete every expired warning, one slice per transaction; returns how many."""
    total = 0
    async with pool.acquire() as conn:
        for _ in range(10_000):  # bounded: a round never runs away
            deleted = await warnings.prune(conn, keep_days, _SLICE)
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
