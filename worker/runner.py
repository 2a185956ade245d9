"""`sextant work`: one consumer-group member turning calls into rows.

The shape of aiokafka's `local_state_consumer` example: manual commits after
`getmany()` batches, and a rebalance listener that lets the batch in hand finish and
commit before partitions move. Offsets are committed only after Postgres commits, so
a crash anywhere replays the batch, and the messageId ledger makes replays harmless.

A worker splits its partitions into lanes (`WORKER_LANES`), each fetching, applying and
committing its own partitions in turn, so that while Postgres works on one lane's
batch, Python decodes and prepares another's, and no lane waits for another to finish.
A partition belongs to one lane, so its batches still go one after the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord as Record
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from sextant import collector
from sextant.db import create_pool
from sextant.kafka import ensure_topics, make_producer
from sextant.settings import Settings
from sextant.signals import wait_for_stop_signal
from worker import traits
from worker.apply import BatchConflict, Outcome, apply_calls
from worker.calls import AnyCall, decode_call
from worker.dlq import dead_letter
from worker.health import serving_health
from worker.metrics import WorkerMetrics
from worker.readiness import probe_database_forever
from worker.retention import prune_forever

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


@dataclass
class Worker:
    settings: Settings
    pool: asyncpg.Pool
    consumer: AIOKafkaConsumer
    producer: AIOKafkaProducer
    metrics: WorkerMetrics
    stopping: asyncio.Event
    locks: tuple[asyncio.Lock, ...]  # one per lane, held while its batch is in hand
    ready: bool = True

    async def run(self) -> None:
        """Run every lane until asked to stop; the batches in hand always finish.

        A lane that fails stops the others (a task group cancels them), so the worker
        exits and its partitions move, rather than running on with some unserved.
        """
        async with asyncio.TaskGroup() as lanes:
            for lane in range(len(self.locks)):
                lanes.create_task(self._run_lane(lane), name=f"lane-{lane}")

    async def _run_lane(self, lane: int) -> None:
        """Fetch, apply, commit the lane's partitions, one batch after another."""
        while not self.stopping.is_set():
            mine = self._partitions_of(lane)
            if not mine:  # fewer partitions than lanes, or between assignments
                await _sleep_or_stop(self.stopping, 0.2)
                continue
            batch = await self.consumer.getmany(
                *mine, timeout_ms=200, max_records=self.settings.worker_batch_size
            )
            records = [r for part in batch.values() for r in part]
            if not records:
                continue
            async with self.locks[lane]:
                # A rebalance may have taken partitions while we waited for the lock.
                assigned = self.consumer.assignment()
                records = [r for r in records if TopicPartition(r.topic, r.partition) in assigned]
                if records and await self.process(records):
                    await self.commit(records)
                await self.observe_lag([tp for tp in mine if tp in assigned])

    def _partitions_of(self, lane: int) -> list[TopicPartition]:
        return [tp for tp in self.consumer.assignment() if tp.partition % len(self.locks) == lane]

    async def process(self, records: list[Record]) -> bool:
        """Apply and dead-letter `records`; False if stopped before the database took them."""
        started = time.perf_counter()
        calls: list[tuple[Record, AnyCall]] = []
        poison: list[_Poison] = []
        for record in records:
            try:
                calls.append((record, decode_call(record.value)))
            except msgspec.DecodeError as e:  # ValidationError is a DecodeError
                poison.append(_Poison(record, f"undecodable: {e}"))
        outcome = await self._apply_with_retries(calls, poison) if calls else Outcome()
        if outcome is None:
            return False
        for letter in poison:
            await self._dead_letter(letter)
        self._observe(outcome, len(records), time.perf_counter() - started)
        return True

    async def _dead_letter(self, letter: _Poison) -> None:
        await dead_letter(
            self.producer, self.settings.kafka_dlq_topic, letter.record, letter.reason
        )
        with structlog.contextvars.bound_contextvars(**_record_context(letter.record, letter.call)):
            log.warning("dead_lettered", reason=letter.reason[:200])
        self.metrics.dead_lettered.inc()
        kind = type(letter.call).__name__.lower() if letter.call else "unknown"
        self.metrics.calls.labels(kind, "dead_lettered").inc()

    async def observe_lag(self, partitions: list[TopicPartition]) -> None:
        """Set the lag gauge of each partition: its end less our next offset."""
        for tp in partitions:
            try:
                highwater = self.consumer.highwater(tp)
                if highwater is None:  # nothing fetched from it yet
                    continue
                position = await self.consumer.position(tp)
            except IllegalStateError:  # revoked meanwhile
                continue
            self.metrics.lag.labels(str(tp.partition)).set(max(highwater - position, 0))

    async def _apply_with_retries(
        self, calls: list[tuple[Record, AnyCall]], poison: list[_Poison]
    ) -> Outcome | None:
        """Apply the batch, adding to `poison` what Postgres refuses; None if stopped first."""
        backoff, conflicts = 0.1, 0
        while not self.stopping.is_set():
            outcome: Outcome | None
            try:
                outcome = await self._apply([c for _, c in calls])
            except _CONFLICTS as e:
                conflicts += 1
                self.metrics.retries.labels("conflict").inc()
                if conflicts <= _CONFLICT_RETRIES:
                    log.info("batch_conflict", error=type(e).__name__)
                    await asyncio.sleep(random.uniform(0, 0.05))  # noqa: S311 - jitter only
                    continue
                outcome = await self._apply_one_by_one(calls, poison)
            except _UNAVAILABLE as e:
                self.set_ready(False, str(e))
                self.metrics.retries.labels("database_unavailable").inc()
                await _sleep_or_stop(self.stopping, backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
                continue
            except asyncpg.PostgresError as e:
                log.warning("batch_failed_isolating", error=str(e)[:200], calls=len(calls))
                outcome = await self._apply_one_by_one(calls, poison)
            if outcome is not None:
                self.set_ready(True)
                return outcome
        return None

    async def _apply(self, calls: list[AnyCall]) -> Outcome:
        async with self.pool.acquire() as conn:
            return await apply_calls(conn, calls)

    async def _apply_one_by_one(
        self, calls: list[tuple[Record, AnyCall]], poison: list[_Poison]
    ) -> Outcome | None:
        """Find the calls Postgres refuses, so that only they go to the DLQ.

        None if the database went away meanwhile: the batch then starts over (calls
        already applied here are skipped as duplicates).
        """
        total, refused = Outcome(), []
        for record, call in calls:
            with structlog.contextvars.bound_contextvars(**_record_context(record, call)):
                result = await self._apply_alone(call)
            if result is None:
                return None
            if isinstance(result, str):
                refused.append(_Poison(record, result, call))
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
                return _refusal(call, e)
        return _refusal(call, conflict)

    async def commit(self, records: list[Record]) -> None:
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            if tp not in offsets or offsets[tp].offset <= r.offset:
                offsets[tp] = OffsetAndMetadata(r.offset + 1, "")
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as e:
            # The partitions moved on; their new owner replays these calls, and the
            # messageId ledger makes that harmless.
            log.warning("commit_failed", error=str(e))

    def _observe(self, outcome: Outcome, size: int, seconds: float) -> None:
        self.metrics.batch_size.observe(size)
        self.metrics.apply_seconds.observe(seconds)
        for (kind, result), n in outcome.calls.items():
            self.metrics.calls.labels(kind, result).inc(n)
        if outcome.dropped_attributes:
            self.metrics.dropped_attributes.inc(outcome.dropped_attributes)
        log.debug("batch_applied", n=size, ms=round(seconds * 1000, 1))

    def set_ready(self, ready: bool, reason: str = "") -> None:
        if ready != self.ready:
            log.warning("database_reachable" if ready else "database_unreachable", error=reason)
        self.ready = ready
        self.metrics.ready.set(1 if ready else 0)


@dataclass(frozen=True, slots=True)
class _Poison:
    """A record for the DLQ, with its reason and, when it decoded, its call."""

    record: Record
    reason: str
    call: AnyCall | None = None


def _record_context(record: Record, call: AnyCall | None) -> dict[str, object]:
    """What a log line about one record carries: where it is and whose it is, never who."""
    context: dict[str, object] = {"partition": record.partition, "offset": record.offset}
    if call is not None:
        context.update(workspace=call.workspace_id, message_id=call.messageId)
    elif record.key:
        # The receiver keys records `workspace:identity`; the identity stays out of logs.
        context["workspace"] = record.key.partition(b":")[0].decode(errors="replace")
    return context


def _refusal(call: AnyCall, e: Exception | None) -> str:
    """The DLQ reason for a call Postgres refuses, naming the fix when we know it."""
    fkey = e.constraint_name if isinstance(e, asyncpg.ForeignKeyViolationError) else None
    if fkey and fkey.endswith("_workspace_id_fkey"):
        # A workspace row lost (a restore from before it existed, say): once it is
        # restored with the same id, `sextant dlq replay` applies these calls.
        return f"no workspace {call.workspace_id} in the database: {e}"
    return f"refused by the database: {e}"


class _FinishBeforeRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Partitions leave only after the batches in hand are applied and committed."""

    def __init__(self, locks: tuple[asyncio.Lock, ...], metrics: WorkerMetrics) -> None:
        self._locks = locks
        self._metrics = metrics

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with contextlib.AsyncExitStack() as held:
            for lock in self._locks:  # always in lane order
                await held.enter_async_context(lock)
            for tp in revoked:  # another member reports their lag now
                with contextlib.suppress(KeyError):
                    self._metrics.lag.remove(str(tp.partition))
            if revoked:
                log.info("partitions_revoked", partitions=sorted(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions_assigned", partitions=sorted(tp.partition for tp in assigned))


async def _sleep_or_stop(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


@contextlib.asynccontextmanager
async def worker_resources(
    settings: Settings, stopping: asyncio.Event | None = None
) -> AsyncIterator[Worker]:
    """A started worker's pool, consumer and DLQ producer, closed in reverse order."""
    await ensure_topics(settings)
    pool = await create_pool(settings, min_size=0)  # starts while Postgres is down
    locks = tuple(asyncio.Lock() for _ in range(settings.worker_lanes))
    metrics = WorkerMetrics()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.require_kafka(),
        group_id=settings.kafka_consumer_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    consumer.subscribe([settings.kafka_topic], listener=_FinishBeforeRevoke(locks, metrics))
    producer = make_producer(settings)
    try:
        await consumer.start()
        await producer.start()
        metrics.ready.set(1)
        stopping = stopping or asyncio.Event()
        yield Worker(settings, pool, consumer, producer, metrics, stopping, locks)
    finally:
        await producer.stop()
        await consumer.stop()  # leaves the group so its partitions move at once
        await pool.close()


async def run_worker(settings: Settings) -> int:
    """Run until SIGINT/SIGTERM, then finish the batch in hand, commit and leave."""
    stopping = asyncio.Event()
    traits.warm_up()
    signal_task = asyncio.create_task(wait_for_stop_signal())
    signal_task.add_done_callback(lambda _: stopping.set())
    try:
        async with worker_resources(settings, stopping) as worker, serving_health(worker):
            log.info(
                "worker_started", topic=settings.kafka_topic, group=settings.kafka_consumer_group
            )
            collector.tune_for_throughput()
            background = [
                asyncio.create_task(prune_forever(worker.pool)),
                asyncio.create_task(probe_database_forever(worker.pool, worker.set_ready)),
            ]
            try:
                await worker.run()
            finally:
                for task in background:
                    task.cancel()
    finally:
        signal_task.cancel()
    log.info("worker_stopped")
    return 0
