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
from worker.rules.state import DEFAULT_LIMITS, Limits
from worker.unit_of_work import Outcome, apply_calls

log = structlog.get_logger()

# Another worker touched the same rows: start the batch again at once. (A foreign key
# violated means a workspace Postgres does not have: no retry brings it back.)
_CONFLICTS = (
    BatchConflict,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.UniqueViolationError,
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
# Conflicts clear once the other worker commits; one that keeps coming back is treated as
# a bad call, and isolated rather than retried forever.
_CONFLICT_RETRIES = 20


class BatchAttempts:
    """Applies batches on a pool, reporting readiness as Postgres comes and goes.

    A batch that fails for any other reason is split in two and each half tried again,
    down to the single calls that fail, which go to the DLQ; the rest of the batch applies.
    One bad call among n costs about 2 log2(n) extra transactions, most of which fail at
    their first statement, rather than n transactions of one call each.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        metrics: WorkerMetrics,
        stopping: asyncio.Event,
        set_ready: Callable[[bool, str], None],
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self._pool = pool
        self._limits = limits
        self._metrics = metrics
        self._stopping = stopping
        self._set_ready = set_ready

    async def apply(
        self, calls: list[tuple[Record, AnyCall]], poison: list[DeadLetter]
    ) -> Outcome | None:
        """Apply the batch, adding to `poison` the calls that cannot be applied; None if
        stopped before it was done (calls applied meanwhile are duplicates next time)."""
        result = await self._until_settled([c for _, c in calls])
        if result is None:
            return None
        if isinstance(result, Outcome):
            records = {id(call): record for record, call in calls}
            poison.extend(DeadLetter(records[id(c)], why, c) for c, why in result.refused)
            return result
        if len(calls) == 1:
            [(record, call)] = calls
            with structlog.contextvars.bound_contextvars(**record_context(record, call)):
                log.warning("call_refused", error=repr(result)[:200])
            poison.append(DeadLetter(record, refusal(call, result), call))
            return Outcome()
        log.info("batch_refused_splitting", calls=len(calls), error=repr(result)[:200])
        self._metrics.retries.labels("split").inc()
        middle, total = len(calls) // 2, Outcome()
        for half in (calls[:middle], calls[middle:]):
            part = await self.apply(half, poison)
            if part is None:
                return None
            total.add(part)
        return total

    async def _until_settled(self, calls: list[AnyCall]) -> Outcome | Exception | None:
        """The batch applied, or what refused it; conflicts with other workers are retried
        and a Postgres outage waited out meanwhile. None if stopped first."""
        backoff, conflicts = 0.1, 0
        while not self._stopping.is_set():
            try:
                async with self._pool.acquire() as conn:
                    outcome = await apply_calls(conn, calls, self._limits)
            except _CONFLICTS as e:
                conflicts += 1
                self._metrics.retries.labels("conflict").inc()
                if conflicts > _CONFLICT_RETRIES:
                    return e
                log.info("batch_conflict", error=type(e).__name__)
                await asyncio.sleep(random.uniform(0, 0.05))  # noqa: S311 - jitter only
                continue
            except _UNAVAILABLE as e:
                self._set_ready(False, str(e))
                self._metrics.retries.labels("database_unavailable").inc()
                await sleep_or_stop(self._stopping, backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
                continue
            except Exception as e:
                return e
            self._set_ready(True, "")
            return outcome
        return None


async def sleep_or_stop(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
