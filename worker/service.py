"""`sextant work`: the worker's composition root. It builds the pool, the consumer and the
DLQ producer from the settings, serves the probes, and runs the worker until a signal."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from aiokafka import AIOKafkaConsumer

from sextant import runtime
from sextant.db import create_pool
from sextant.kafka import ensure_topics, make_producer
from sextant.probes import serving_probes
from sextant.settings import Settings
from worker.consumer import FinishBeforeRevoke, Worker
from worker.metrics import WorkerMetrics
from worker.readiness import probe_database_forever
from worker.retention import prune_forever
from worker.rules import mapping

log = structlog.get_logger()


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
    consumer.subscribe([settings.kafka_topic], listener=FinishBeforeRevoke(locks, metrics))
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


def serving_worker_probes(worker: Worker) -> contextlib.AbstractAsyncContextManager[int]:
    """The worker's /healthz, /readyz and /metrics on WORKER_PORT; yields the port."""

    def refresh_pool_gauges() -> None:
        pool, metrics = worker.pool, worker.metrics
        metrics.pool_in_use.set(pool.get_size() - pool.get_idle_size())
        metrics.pool_size.set(pool.get_size())
        metrics.pool_max.set(pool.get_max_size())

    return serving_probes(
        worker.settings.host,
        worker.settings.worker_port,
        lambda: {"database": worker.ready},
        worker.metrics.registry,
        refresh_pool_gauges,
    )


async def run_worker(settings: Settings) -> int:
    """Run until SIGINT/SIGTERM, then finish the batch in hand, commit and leave."""
    stopping = asyncio.Event()
    mapping.warm_up()
    signal_task = asyncio.create_task(runtime.wait_for_stop_signal())
    signal_task.add_done_callback(lambda _: stopping.set())
    try:
        async with worker_resources(settings, stopping) as worker, serving_worker_probes(worker):
            log.info(
                "worker_started", topic=settings.kafka_topic, group=settings.kafka_consumer_group
            )
            runtime.tune_collector_for_throughput()
            background = [
                asyncio.create_task(prune_forever(worker.pool)),
                asyncio.create_task(runtime.release_freed_memory_forever()),
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
