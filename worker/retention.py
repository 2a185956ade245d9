"""Forgetting old messageIds in the background, a small slice at a time."""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from worker.sql import ledger

log = structlog.get_logger()

KEEP_DAYS = 8  # the contract promises at least 7
_SLICE = 5000  # rows per delete: short transactions that never hold ingestion up
_PAUSE = 60.0


async def prune_once(pool: asyncpg.Pool, keep_days: int = KEEP_DAYS) -> int:
    """Delete every expired ledger row, one slice per transaction; returns how many."""
    total = 0
    async with pool.acquire() as conn:
        for _ in range(10_000):  # bounded: a round never runs away
            deleted = await ledger.prune(conn, keep_days, _SLICE)
            total += deleted
            if deleted < _SLICE:
                break
    return total


async def prune_forever(pool: asyncpg.Pool, keep_days: int = KEEP_DAYS) -> None:
    """Delete expired ledger rows in slices; a failure waits for the next round."""
    while True:
        try:
            deleted = await prune_once(pool, keep_days)
            if deleted:
                log.info("ledger_pruned", deleted=deleted)
        except (OSError, asyncpg.PostgresError) as e:
            log.warning("ledger_prune_failed", error=str(e))
        await asyncio.sleep(_PAUSE)
