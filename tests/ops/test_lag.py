"""Consumer lag, as `sextant lag` reports it and as workers export it, and /metrics."""

from __future__ import annotations

import asyncio
import dataclasses
import re

import aiohttp
import msgspec
import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from prometheus_client import generate_latest

from ingest.metrics import IngestMetrics
from ops.keys import CreatedKey
from sextant.kafka import make_producer
from sextant.settings import Settings
from tests.support.calls import stamped
from tests.support.fixture_types import Run
from tests.support.helpers import ROOT
from worker.metrics import WorkerMetrics
from worker.service import serving_worker_probes, worker_resources


async def _produce(settings: Settings, workspace: CreatedKey, n: int) -> int:
    """`n` page calls for one user, so all on one partition; returns the partition."""
    producer: AIOKafkaProducer = make_producer(settings)
    await producer.start()
    try:
        for _ in range(n):
            meta = await producer.send_and_wait(
                settings.kafka_topic,
                msgspec.json.encode(stamped(workspace, type="page", userId="u1")),
                key=f"{workspace.workspace_id}:u1".encode(),
            )
        return int(meta.partition)
    finally:
        await producer.stop()


def _lag(sextant: Run) -> dict[str, object]:
    result = sextant("lag", "--json")
    assert result.returncode == 0, result.stderr
    decoded: dict[str, object] = msgspec.json.decode(result.stdout)
    return decoded


@pytest.mark.slow
async def test_lag_per_partition_from_the_cli_and_the_worker_gauge(
    settings: Settings, workspace: CreatedKey, sextant: Run, http: aiohttp.ClientSession
) -> None:
    """Before any commit every record is lag; after a worker applies and commits five of
    twenty, `sextant lag` and the worker's gauge both say fifteen on that partition."""
    own = dataclasses.replace(settings, worker_port=0)
    async with worker_resources(own) as worker, serving_worker_probes(worker) as port:
        partition = await _produce(settings, workspace, 20)
        before = _lag(sextant)
        assert before["total"] == 20
        rows = {p["partition"]: p for p in before["partitions"]}  # type: ignore[attr-defined]
        assert rows[partition] == {"partition": partition, "committed": None, "end": 20, "lag": 20}

        # Each call was its own record batch, and a fetch may bring fewer than asked for.
        records: list[ConsumerRecord[bytes, bytes]] = []
        while len(records) < 5:
            batch = await worker.consumer.getmany(timeout_ms=500, max_records=5 - len(records))
            records += [r for part in batch.values() for r in part]
        assert await worker.process(records)
        await worker.commit(records)
        await worker.observe_lag(list(worker.consumer.assignment()))

        after = _lag(sextant)
        assert after["total"] == 15
        rows = {p["partition"]: p for p in after["partitions"]}  # type: ignore[attr-defined]
        assert rows[partition]["committed"] == 5
        gauge = worker.metrics.registry.get_sample_value(
            "sextant_worker_consumer_lag", {"partition": str(partition)}
        )
        assert gauge == 15
        table = sextant("lag").stdout
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
    assert f'sextant_worker_consumer_lag{{partition="{partition}"}} 15.0' in text
    assert re.search(r"^sextant_worker_db_pool_max \d", text, re.M)
    assert re.search(r"^sextant_worker_db_pool_in_use \d", text, re.M)
    assert f"group {settings.kafka_consumer_group}" in table
    assert re.search(rf"^\s+{partition}\s+5\s+20\s+15$", table, re.M)
    assert table.rstrip().endswith("total lag 15")


def test_lag_of_a_missing_topic_is_one_line_not_a_traceback(
    settings: Settings, sextant: Run
) -> None:
    """Before any process created the topic, `sextant lag` says so and exits 1."""
    result = sextant("lag")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"sextant: no topic {settings.kafka_topic!r} on the broker (KAFKA_TOPIC)"
    )


def test_every_metric_the_runbook_names_is_exported() -> None:
    """The runbook's metric names are ones receivers and workers serve on /metrics."""
    named = set(re.findall(r"`(sextant_[a-z_]+)", (ROOT / "deploy/RUNBOOK.md").read_text()))
    assert len(named) > 10
    text = b"".join(
        generate_latest(m.registry) for m in (IngestMetrics(), WorkerMetrics())
    ).decode()
    exported = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    exported |= {f"{name}_total" for name in exported}  # counters' samples end in _total
    assert named <= exported, named - exported


@pytest.mark.slow
async def test_lag_counts_every_record_of_multi_record_batches(
    settings: Settings, workspace: CreatedKey, sextant: Run
) -> None:
    """Records produced together travel in one record batch; the embedded broker reports the
    end of a partition as the start of its last batch, and `sextant lag` must still count
    every record no worker has consumed."""
    producer: AIOKafkaProducer = make_producer(settings)
    await producer.start()
    try:
        for round_ in range(3):
            sent = [
                await producer.send(
                    settings.kafka_topic,
                    msgspec.json.encode(stamped(workspace, type="page", userId="u1")),
                    key=f"{workspace.workspace_id}:u{i % 3}".encode(),
                )
                for i in range(40 + round_)
            ]
            await producer.flush()
            await asyncio.gather(*sent)
    finally:
        await producer.stop()
    lag = _lag(sextant)
    produced = 40 + 41 + 42
    assert lag["total"] == produced
    assert sum(p["end"] for p in lag["partitions"]) == produced  # type: ignore[attr-defined]
