"""The worker's Prometheus metrics, in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.batch_size = Histogram(
            "sextant_worker_batch_size",
            "Calls per batch applied.",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000),
            registry=self.registry,
        )
        self.apply_seconds = Histogram(
            "sextant_worker_apply_seconds",
            "Time to apply one batch in Postgres, retries included.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.calls = Counter(
            "sextant_worker_calls",
            "Calls by type and outcome (applied, duplicate, deleted, blocked, dead_lettered).",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.warnings = Counter(
            "sextant_ingestion_warnings",
            "Ingestion warnings by kind, every one, recorded in Postgres or only counted.",
            ["kind"],
            registry=self.registry,
        )
        self.rebuilt = Counter(
            "sextant_worker_calls_replayed",
            "Calls applied again to rebuild users in call-time order, after a call arrived "
            "later than newer calls whose fate it changes (a delete, an earlier claim on an "
            "anonymous id, a free-email status).",
            registry=self.registry,
        )
        self.dead_lettered = Counter(
            "sextant_worker_dead_lettered", "Messages sent to the DLQ.", registry=self.registry
        )
        self.retries = Counter(
            "sextant_worker_retries",
            "Batches retried, by reason: conflict, database_unavailable, split (a batch that "
            "failed, tried again as two halves to find the calls that cannot be applied).",
            ["reason"],
            registry=self.registry,
        )
        self.ready = Gauge(
            "sextant_worker_ready", "1 while the worker can reach Postgres.", registry=self.registry
        )
        self.lag = Gauge(
            "sextant_worker_consumer_lag",
            "Messages behind the end of each assigned partition.",
            ["partition"],
            registry=self.registry,
        )
        self.pool_in_use = Gauge(
            "sextant_worker_db_pool_in_use", "Postgres connections in use.", registry=self.registry
        )
        self.pool_size = Gauge(
            "sextant_worker_db_pool_size",
            "Postgres connections open (in use or idle); at most DB_POOL_SIZE.",
            registry=self.registry,
        )
        self.pool_max = Gauge(
            "sextant_worker_db_pool_max", "DB_POOL_SIZE: the pool's limit.", registry=self.registry
        )
