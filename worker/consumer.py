"""One consumer-group member turning calls into rows.

The shape of aiokafka's `local_state_consumer` example: manual commits after
`getmany()` batches, and a rebalance listener that lets the batch in hand finish and
commit before partitions move. Offsets are committed only after Postgres commits, so
a crash anywhere replays the batch, and the call journal (every messageId applied) makes
replays harmless.

A worker splits its partitions into lanes (`WORKER_LANES`), each fetching, applying and
committing its own partitions in turn, so that while Postgres works on one lane's
batch, Python decodes and prepares another's, and no lane waits for another to finish.
A partition belongs to one lane, so its batches still go one after the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import asyncpg
import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from sextant.calls import AnyCall, decode_call
from sextant.kafka import Record
from sextant.settings import Settings
from worker import dead_letters
from worker.apply import call_type
from worker.attempts import BatchAttempts, sleep_or_stop
from worker.dead_letters import DeadLetter, record_context
from worker.metrics import WorkerMetrics
from worker.rules.state import Limits
from worker.unit_of_work import Outcome

log = structlog.get_logger()


@dataclass
class Worker:
    """A consumer-group member: its lanes fetch, apply and commit until `stopping` is set."""

    settings: Settings
    pool: asyncpg.Pool
    consumer: AIOKafkaConsumer
    producer: AIOKafkaProducer  # for the DLQ
    metrics: WorkerMetrics
    stopping: asyncio.Event
    locks: tuple[asyncio.Lock, ...]  # one per lane, held while its batch is in hand
    ready: bool = True
    attempts: BatchAttempts = field(init=False)

    def __post_init__(self) -> None:
        limits = Limits(
            max_anonymous_ids_per_user=self.settings.max_anonymous_ids_per_user,
            max_attributes_per_entity=self.settings.max_attributes_per_entity,
        )
        self.attempts = BatchAttempts(
            self.pool, self.metrics, self.stopping, self.set_ready, limits
        )

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
                await sleep_or_stop(self.stopping, 0.2)
                continue
            fetched = await self.consumer.getmany(
                *mine, timeout_ms=200, max_records=self.settings.worker_batch_size
            )
            records = [r for part in fetched.values() for r in part]
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
        poison: list[DeadLetter] = []
        for record in records:
            try:
                calls.append((record, decode_call(record.value)))
            except msgspec.DecodeError as e:  # ValidationError is a DecodeError
                poison.append(DeadLetter(record, f"undecodable: {e}"))
            except Exception as e:
                poison.append(DeadLetter(record, f"undecodable: {type(e).__name__}: {e}"))
        outcome = await self.attempts.apply(calls, poison) if calls else Outcome()
        if outcome is None:
            return False
        for letter in poison:
            await self._dead_letter(letter)
        self._observe(outcome, len(records), time.perf_counter() - started)
        return True

    async def _dead_letter(self, letter: DeadLetter) -> None:
        await dead_letters.send(self.producer, self.settings.kafka_dlq_topic, letter)
        with structlog.contextvars.bound_contextvars(**record_context(letter.record, letter.call)):
            log.warning("dead_lettered", reason=letter.reason[:200])
        self.metrics.dead_lettered.inc()
        label = call_type(letter.call) if letter.call else "unknown"
        self.metrics.calls.labels(label, "dead_lettered").inc()

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
            # call journal makes that harmless.
            log.warning("commit_failed", error=str(e))

    def _observe(self, outcome: Outcome, size: int, seconds: float) -> None:
        self.metrics.batch_size.observe(size)
        self.metrics.apply_seconds.observe(seconds)
        for (label, result), n in outcome.calls.items():
            self.metrics.calls.labels(label, result).inc(n)
        for kind, n in outcome.warnings.items():
            self.metrics.warnings.labels(kind).inc(n)
        self.metrics.rebuilt.inc(outcome.rebuilt)
        log.debug("batch_applied", n=size, ms=round(seconds * 1000, 1))

    def set_ready(self, ready: bool, reason: str = "") -> None:
        if ready != self.ready:
            log.warning("database_reachable" if ready else "database_unreachable", error=reason)
        self.ready = ready
        self.metrics.ready.set(1 if ready else 0)


class FinishBeforeRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
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
