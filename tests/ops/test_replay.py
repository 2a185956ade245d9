"""Backfills: a time or offset range of the topic re-produced, and applied at most once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec
import pytest
from aiokafka import AIOKafkaProducer

from ops.keys import CreatedKey
from ops.replay import Span, replay
from sextant.errors import AdminError
from sextant.kafka import make_producer
from sextant.settings import Settings
from tests.support.calls import stamped
from tests.support.fixture_types import Run
from worker.consumer import Worker


async def _send_pages(settings: Settings, workspace: CreatedKey, n: int) -> int:
    """`n` page calls for user u1 (one partition); returns that partition."""
    producer: AIOKafkaProducer = make_producer(settings)
    await producer.start()
    try:
        partition = -1
        for _ in range(n):
            meta = await producer.send_and_wait(
                settings.kafka_topic,
                msgspec.json.encode(stamped(workspace, type="page", userId="u1")),
                key=f"{workspace.workspace_id}:u1".encode(),
            )
            partition = meta.partition
        return partition
    finally:
        await producer.stop()


@pytest.mark.slow
async def test_replayed_ranges_are_counted_as_duplicates_not_applied_twice(
    settings: Settings,
    db: asyncpg.Connection,
    workspace: CreatedKey,
    start_worker: Callable[[], Awaitable[Worker]],
    make: Run,
) -> None:
    """`replay` of a time range and `make replay` of an offset range put exactly those
    records back; the worker counts them as duplicates and page_views stays exact."""
    worker = await start_worker()
    first = datetime.now(UTC)
    partition = await _send_pages(settings, workspace, 3)
    await asyncio.sleep(0.05)
    middle = datetime.now(UTC)
    await asyncio.sleep(0.05)
    await _send_pages(settings, workspace, 4)
    await eventually(lambda: _page_views(db, workspace), 7)

    dry = make("replay", f"PARTITION={partition}", "FROM_OFFSET=1", "TO_OFFSET=2", "DRY_RUN=1")
    assert dry.returncode == 0, dry.stderr
    assert f"partition {partition}: offsets 1 to 2" in dry.stdout
    assert "would replay 2 record(s)" in dry.stdout
    early = Span(from_time=first, to_time=middle)
    assert (await replay(settings, early, dry_run=True)).records == 3

    assert (await replay(settings, Span(from_time=middle))).records == 4
    done = make("replay", f"PARTITION={partition}", "FROM_OFFSET=1", "TO_OFFSET=2")
    assert "replayed 2 record(s)" in done.stdout, done.stderr

    await eventually(lambda: _duplicates(worker), 6)
    await asyncio.sleep(0.5)  # anything applied twice would show by now
    assert await _page_views(db, workspace) == 7
    assert await _duplicates(worker) == 6


async def _page_views(db: asyncpg.Connection, workspace: CreatedKey) -> int:
    views = await db.fetchval(
        "SELECT page_views FROM users WHERE workspace_id = $1", workspace.workspace_id
    )
    return int(views or 0)


async def _duplicates(worker: Worker) -> int:
    found = worker.metrics.registry.get_sample_value(
        "sextant_worker_calls_total", {"type": "page", "outcome": "duplicate"}
    )
    return int(found or 0)


async def eventually(read: Callable[[], Awaitable[int]], expected: int) -> None:
    """Poll `read` until it returns `expected`; the test's timeout bounds the wait."""
    while (value := await read()) != expected:
        assert value < expected, f"{value} is past {expected}"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize(
    ("span", "message"),
    [
        (Span(), "give a time range"),
        (Span(from_time=datetime.now(UTC), from_offset=0, partition=0), "not both"),
        (Span(to_time=datetime.now(UTC)), "--from-time is required"),
        (Span(from_offset=3), "needs --partition"),
        (Span(partition=1, from_offset=5, to_offset=4), "must not be before"),
        (
            Span(from_time=datetime.now(UTC), to_time=datetime.now(UTC) - timedelta(hours=1)),
            "must be after",
        ),
    ],
)
def test_a_span_that_names_no_single_range_is_refused(span: Span, message: str) -> None:
    """Ambiguous or empty ranges are refused before anything is read or sent."""
    with pytest.raises(AdminError, match=message):
        span.check()


def test_replay_from_the_command_line_refuses_a_bad_time(sextant: Run) -> None:
    """A time that is not ISO 8601 is a usage error naming the option."""
    result = sextant("replay", "--from-time", "yesterday")
    assert result.returncode == 2
    assert "--from-time: not an ISO 8601 time: 'yesterday'" in result.stderr
