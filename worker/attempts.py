"""Applying a batch until it commits: conflicts with other workers are retried at once,
a Postgres outage is waited out, and the calls Postgres refuses are isolated for the DLQ
so that their batch-mates still apply."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable

import asyncpg
import structlog

from sextant.calls import AnyCall
from sextant.errors import BatchConflict
from sextant.kafka import Record
from worker.dead_letters import DeadLetter, record_context, refusal
from worker.metrics import WorkerMetrics
from worker.unit_of_work import Outcome, apply_calls

log = structlog.get_logger()

# Another worker touched the same rows: start the batch again at once.
_CONFLICTS = (
    BatchConflict,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.UniqueViolationError,
    asyncpg.ForeignKeyViolationError,
)
# Postgres is away: wait and try again, committing nothing meanwhile.
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
)
_MAX_BACKOFF = 5.0
# Conflicts clear once the other worker commits; one that keeps coming back is a bad
# message (a workspace deleted under it, say), and is isolated rather than retried forever.
_CONFLICT_RETRIES = 20


class BatchAttempts:
    """Applies batches on a pool, reporting readiness as Postgres comes and goes."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        metrics: WorkerMetrics,
        stopping: asyncio.Event,
        set_ready: Callable[[bool, str], None],
    ) -> None:
        self._pool = pool
        self._metrics = metrics
        self._stopping = stopping
        self._set_ready = set_ready

    async def apply(
        self, calls: list[tuple[Record, AnyCall]], poison: list[DeadLetter]
    ) -> Outcome | None:
        """Apply the batch, adding to `poison` what Postgres refuses; None if stopped first."""
        backoff, conflicts = 0.1, 0
        while not self._stopping.is_set():
            outcome: Outcome | None
            try:
                outcome = await self._apply([c for _, c in calls])
            except _CONFLICTS as e:
                conflicts += 1
                self._metrics.retries.labels("conflict").inc()
                if conflicts <= _CONFLICT_RETRIES:
                    log.info("batch_conflict", error=type(e).__name__)
                    await asyncio.sleep(random.uniform(0, 0.05))  # noqa: S311 - jitter only
                    continue
                outcome = await self._apply_one_by_one(calls, poison)
            except _UNAVAILABLE as e:
                self._set_ready(False, str(e))
                self._metrics.retries.labels("database_unavailable").inc()
                await sleep_or_stop(self._stopping, backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
                continue
            except asyncpg.PostgresError as e:
                log.warning("batch_failed_isolating", error=str(e)[:200], calls=len(calls))
                outcome = await self._apply_one_by_one(calls, poison)
            if outcome is not None:
                self._set_ready(True, "")
                return outcome
        return None

    async def _apply(self, calls: list[AnyCall]) -> Outcome:
        async with self._pool.acquire() as conn:
            return await apply_calls(conn, calls)

    async def _apply_one_by_one(
        self, calls: list[tuple[Record, AnyCall]], poison: list[DeadLetter]
    ) -> Outcome | None:
        """Find the calls Postgres refuses, so that only they go to the DLQ.

        None if the database went away meanwhile: the batch then starts over (calls
        already applied here are skipped as duplicates).
        """
        total, refused = Outcome(), []
        for record, call in calls:
            with structlog.contextvars.bound_contextvars(**record_context(record, call)):
                result = await self._apply_alone(call)
            if result is None:
                return None
            if isinstance(result, str):
                refused.append(DeadLetter(record, result, call))
                continue
            total.calls.update(result.calls)
            total.dropped_attributes += result.dropped_attributes
        poison.extend(refused)
        return total

    async def _apply_alone(self, call: AnyCall) -> Outcome | str | None:
        """One call's outcome, the reason Postgres refuses it, or None if Postgres is away."""
        conflict: Exception | None = None
        for _ in range(_CONFLICT_RETRIES):
            try:
                return await self._apply([call])
            except _CONFLICTS as e:
                conflict = e
            except _UNAVAILABLE:
                return None
            except asyncpg.PostgresError as e:
                return refusal(call, e)
        return refusal(call, conflict)


async def sleep_or_stop(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
