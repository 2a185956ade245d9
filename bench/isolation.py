"""`python -m bench isolation`: what a few bad records cost the batch they are in.

One worker takes three batches of the same size, as if fetched from its partitions:
clean; with a dozen records whose messageId is far too long (written past the receiver,
so only the worker's decoder stands in their way); and with a dozen calls Postgres
refuses (their workspace is gone), which the worker finds by splitting the batch.
Each is timed from the records in hand until applied and dead-lettered.
"""

from __future__ import annotations

import dataclasses
import random
import time
import uuid
from typing import Any

import msgspec
from aiokafka.structs import ConsumerRecord

from bench.calls import realistic_call
from ops.keys import CreatedKey, create_key
from sextant.db import connection
from sextant.settings import Settings
from worker.consumer import Worker
from worker.service import worker_resources

GOOD = 2400
BAD = 12


def _record(offset: int, message: dict[str, Any]) -> ConsumerRecord[bytes, bytes]:
    value = msgspec.json.encode(message)
    return ConsumerRecord("bench", 0, offset, 0, 0, None, value, None, 0, len(value), ())


def _stamped(message: dict[str, Any], ws: CreatedKey) -> dict[str, Any]:
    stamp = {"workspaceId": ws.workspace_id, "connectorId": ws.connector_id}
    return {**message, "receivedAt": "2026-01-01T00:00:00.000Z", "sextant": stamp}


def _batch(
    rng: random.Random, ws: CreatedKey, bad: list[dict[str, Any]]
) -> list[ConsumerRecord[bytes, bytes]]:
    messages = [_stamped(realistic_call(rng, n), ws) for n in range(GOOD + BAD - len(bad))]
    for i, message in enumerate(bad):  # spread through the batch
        messages.insert((i + 1) * len(messages) // (len(bad) + 1), message)
    return [_record(i, m) for i, m in enumerate(messages)]


async def _timed(worker: Worker, records: list[ConsumerRecord[bytes, bytes]]) -> float:
    started = time.perf_counter()
    assert await worker.process(records)
    return time.perf_counter() - started


async def bench_isolation(settings: Settings) -> dict[str, float]:
    rng = random.Random(7)
    async with connection(settings) as conn:
        ws = await create_key(conn, f"isolation-{uuid.uuid4().hex[:8]}")
        lost_id = int(await conn.fetchval("SELECT coalesce(max(id), 0) + 1000 FROM workspaces"))
    lost = CreatedKey("lost", "default", "", "", lost_id, 1)
    long_ids = [
        _stamped({**realistic_call(rng, n), "messageId": "m" * 5000}, ws) for n in range(BAD)
    ]
    refused = [_stamped(realistic_call(rng, n), lost) for n in range(BAD)]
    own = dataclasses.replace(settings, worker_port=0)
    async with worker_resources(own) as worker:
        await _timed(worker, _batch(rng, ws, []))  # warm-up: connections, caches, plans
        clean = await _timed(worker, _batch(rng, ws, []))
        with_long_ids = await _timed(worker, _batch(rng, ws, long_ids))
        with_refused = await _timed(worker, _batch(rng, ws, refused))
        dead = worker.metrics.registry.get_sample_value("sextant_worker_dead_lettered_total")
    assert dead == 2 * BAD, dead
    return {
        "isolation_clean_batch_s": clean,
        "isolation_long_message_ids_batch_s": with_long_ids,
        "isolation_refused_calls_batch_s": with_refused,
        "isolation_long_message_ids_ratio": with_long_ids / clean,
        "isolation_refused_calls_ratio": with_refused / clean,
    }
