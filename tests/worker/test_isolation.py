"""No record stops a worker: whatever a record holds, it goes alone to the DLQ with its
reason, its batch-mates apply, and the partition moves on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import msgspec
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from ops.dlq import list_dead_letters
from ops.keys import CreatedKey
from sextant.settings import Settings
from tests.support.calls import call, stamped
from tests.support.helpers import eventually
from worker.attempts import BatchAttempts
from worker.consumer import Worker
from worker.dead_letters import DeadLetter
from worker.metrics import WorkerMetrics


def record(offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("t", 0, offset, 0, 0, None, b"", None, 0, 0, ())


@pytest.fixture
async def poison_events(db: asyncpg.Connection, workspace: CreatedKey) -> AsyncIterator[None]:
    """Postgres itself refuses this workspace's events named "Poison": a trigger raises."""
    await db.execute(
        f"""CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.workspace_id = {workspace.workspace_id} AND NEW.name = 'Poison' THEN
                RAISE EXCEPTION 'poison refused';
              END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER refuse_poison BEFORE INSERT ON events
               FOR EACH ROW EXECUTE FUNCTION refuse_poison();"""
    )
    yield
    await db.execute("DROP TRIGGER refuse_poison ON events; DROP FUNCTION refuse_poison();")


@pytest.mark.usefixtures("poison_events")
async def test_calls_postgres_refuses_are_found_by_splitting_and_their_batch_mates_apply(
    pool: asyncpg.Pool, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """Three calls Postgres refuses among 200 good ones: the 200 apply, the three are the
    only dead letters, found in far fewer transactions than one per call."""
    calls = [call(workspace, type="track", userId=f"u{i}", event="E") for i in range(200)]
    for at in (17, 90, 151):
        calls.insert(at, call(workspace, type="track", userId="x", event="Poison"))
    metrics = WorkerMetrics()
    attempts = BatchAttempts(pool, metrics, asyncio.Event(), lambda ready, why: None)
    poison: list[DeadLetter] = []

    outcome = await attempts.apply([(record(i), c) for i, c in enumerate(calls)], poison)

    splits = metrics.registry.get_sample_value("sextant_worker_retries_total", {"reason": "split"})
    assert outcome is not None
    assert outcome.calls[("track", "applied")] == 200
    assert sorted(letter.record.offset for letter in poison) == [17, 90, 151]
    assert all("poison refused" in letter.reason for letter in poison)
    events = await db.fetchval(
        "SELECT count(*) FROM events WHERE workspace_id = $1", workspace.workspace_id
    )
    assert events == 200
    # Each split costs two transactions; one call at a time would have cost 203.
    assert splits is not None
    assert 2 * splits < 60


async def test_calls_of_a_missing_workspace_are_refused_before_anything_is_written(
    pool: asyncpg.Pool, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """No split needed, and their messageIds stay unclaimed for a replay after a restore."""
    lost_id = int(await db.fetchval("SELECT coalesce(max(id), 0) + 1000 FROM workspaces"))
    lost = CreatedKey("lost", "default", "", "", lost_id, 1)
    calls = [call(workspace, type="track", userId=f"u{i}", event="E") for i in range(50)]
    calls.insert(20, call(lost, type="track", userId="x", event="E", messageId="lost-1"))
    metrics = WorkerMetrics()
    attempts = BatchAttempts(pool, metrics, asyncio.Event(), lambda ready, why: None)
    poison: list[DeadLetter] = []

    outcome = await attempts.apply([(record(i), c) for i, c in enumerate(calls)], poison)

    assert outcome is not None
    assert outcome.calls[("track", "applied")] == 50
    assert [(p.record.offset, p.reason) for p in poison] == [
        (20, f"no workspace {lost_id} in the database")
    ]
    assert (
        metrics.registry.get_sample_value("sextant_worker_retries_total", {"reason": "split"})
        is None
    )
    claimed = await db.fetchval(
        "SELECT count(*) FROM call_journal WHERE workspace_id = $1", lost_id
    )
    assert claimed == 0


HOSTILE: list[tuple[str, bytes | None]] = [
    ("nested 2,000 levels", b'{"type":"track","a":' * 2000 + b"1" + b"}" * 2000),
    ("not UTF-8", b'{"type":"track","userId":"\xff\xfe"}'),
    ("not JSON", b"\x00\x01garbage"),
    ("no value at all", None),
    ("a JSON array", b"[1,2,3]"),
]


async def test_hostile_records_written_past_the_receiver_never_stop_a_worker(
    settings: Settings,
    db: asyncpg.Connection,
    workspace: CreatedKey,
    producer: AIOKafkaProducer,
    start_worker: Callable[[], Awaitable[Worker]],
) -> None:
    """Records no receiver would write (written to the topic by hand): each is
    dead-lettered with a reason, the good calls around them apply, and the worker runs on."""
    key = f"{workspace.workspace_id}:u1".encode()
    long_id = stamped(workspace, type="track", userId="u1", event="E", messageId="m" * 5000)
    long_event = stamped(workspace, type="track", userId="u1", event="e" * 10_000)
    huge = stamped(workspace, type="group", userId="u1", groupId="g", traits={"employees": 1})
    raw_huge = msgspec.json.encode(huge).replace(b'"employees":1', b'"employees":' + b"9" * 400)
    bad = [v for _, v in HOSTILE] + [msgspec.json.encode(long_id), msgspec.json.encode(long_event)]
    for i, value in enumerate(bad):
        good = stamped(workspace, type="track", userId="u1", event=f"Good {i}")
        await producer.send_and_wait(settings.kafka_topic, value, key=key)
        await producer.send_and_wait(settings.kafka_topic, msgspec.json.encode(good), key=key)
    await producer.send_and_wait(settings.kafka_topic, raw_huge, key=key)
    await start_worker()

    async def done() -> bool:
        letters = await list_dead_letters(settings)
        return len(letters) >= len(bad)

    await eventually(done)

    async def huge_applied() -> bool:
        return bool(
            await db.fetchval(
                "SELECT count(*) FROM accounts WHERE workspace_id = $1", workspace.workspace_id
            )
        )

    await eventually(huge_applied)
    letters = await list_dead_letters(settings)
    events = await db.fetch(
        "SELECT name FROM events WHERE workspace_id = $1 ORDER BY name", workspace.workspace_id
    )
    employees = await db.fetchval(
        "SELECT employees FROM accounts WHERE workspace_id = $1", workspace.workspace_id
    )
    assert len(letters) == len(bad)
    assert all(letter.reason.startswith("undecodable") for letter in letters)
    assert [e["name"] for e in events] == [f"Good {i}" for i in range(len(bad))]
    assert employees is None  # a number past a double is not a count of employees
    after = stamped(workspace, type="track", userId="u1", event="After")
    await producer.send_and_wait(settings.kafka_topic, msgspec.json.encode(after), key=key)

    async def still_working() -> bool:
        return bool(
            await db.fetchval(
                "SELECT count(*) FROM events WHERE workspace_id = $1 AND name = 'After'",
                workspace.workspace_id,
            )
        )

    await eventually(still_working)


@pytest.mark.parametrize("calls", [2400])
async def test_a_batch_is_applied_whole_when_nothing_in_it_is_refused(
    pool: asyncpg.Pool, db: asyncpg.Connection, workspace: CreatedKey, calls: int
) -> None:
    """A clean batch is one transaction: splitting happens only when a batch fails."""
    batch = [call(workspace, type="page", userId=f"u{i % 50}") for i in range(calls)]
    metrics = WorkerMetrics()
    attempts = BatchAttempts(pool, metrics, asyncio.Event(), lambda ready, why: None)
    poison: list[DeadLetter] = []
    outcome = await attempts.apply([(record(i), c) for i, c in enumerate(batch)], poison)
    assert outcome is not None
    assert outcome.calls[("page", "applied")] == calls
    assert poison == []
    assert (
        metrics.registry.get_sample_value("sextant_worker_retries_total", {"reason": "split"})
        is None
    )
