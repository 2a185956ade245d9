"""The DLQ drill of the runbook: a call Postgres refuses is dead-lettered, listed, and
applied exactly once after an operator fixes the cause and replays it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import msgspec
import pytest
from aiokafka import AIOKafkaProducer

from ops.dlq import list_dead_letters
from ops.keys import CreatedKey
from sextant.kafka import make_producer
from sextant.settings import Settings
from tests.support.calls import stamped
from tests.support.fixture_types import Run
from tests.support.helpers import eventually
from worker.consumer import Worker

pytestmark = pytest.mark.slow


async def _events(db: asyncpg.Connection, workspace_id: int) -> int:
    count = await db.fetchval("SELECT count(*) FROM events WHERE workspace_id = $1", workspace_id)
    return int(count)


async def test_lost_workspace_calls_are_dead_lettered_listed_and_applied_once_after_restore(
    settings: Settings,
    db: asyncpg.Connection,
    workspace: CreatedKey,
    producer: AIOKafkaProducer,
    start_worker: Callable[[], Awaitable[Worker]],
    make: Run,
) -> None:
    """A call for a workspace Postgres lacks goes to the DLQ with its reason while the
    partition moves on; `make dlq` lists it; `make workspace-restore` + `make dlq-replay`
    apply it once, and a second replay sends nothing."""
    lost_id = int(await db.fetchval("SELECT coalesce(max(id), 0) + 1000 FROM workspaces"))
    lost = CreatedKey("lost", "default", "", "", lost_id, 1)
    orphan = stamped(lost, type="track", userId="u1", event="Order Completed")
    good = stamped(workspace, type="track", userId="u1", event="Signed Up")
    for ws, message in ((lost_id, orphan), (workspace.workspace_id, good)):
        await producer.send_and_wait(
            settings.kafka_topic, msgspec.json.encode(message), key=f"{ws}:u1".encode()
        )
    worker = await start_worker()

    async def dead_lettered() -> bool:
        return len(await list_dead_letters(settings)) == 1

    await eventually(dead_lettered)
    assert await _events(db, workspace.workspace_id) == 1  # the partition moved on

    listing = make("dlq")
    assert listing.returncode == 0, listing.stderr
    assert f"no workspace {lost_id} in the database" in listing.stdout
    assert f"{settings.kafka_topic}/" in listing.stdout  # the source partition and offset

    name = f"restored-{uuid.uuid4().hex[:8]}"
    restored = make("workspace-restore", f"WORKSPACE={name}", f"ID={lost_id}")
    assert restored.returncode == 0, restored.stderr
    replayed = make("dlq-replay")
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 1 dead letter" in replayed.stdout

    async def applied() -> bool:
        return await _events(db, lost_id) == 1

    await eventually(applied)
    again = make("dlq-replay")
    assert "replayed 0 dead letter" in again.stdout
    await asyncio.sleep(1)  # a second application would show by now
    assert await _events(db, lost_id) == 1
    assert await db.fetchval("SELECT name FROM workspaces WHERE id = $1", lost_id) == name
    assert worker.metrics.registry.get_sample_value("sextant_worker_dead_lettered_total") == 1
    assert (
        worker.metrics.registry.get_sample_value(
            "sextant_worker_calls_total", {"type": "track", "outcome": "dead_lettered"}
        )
        == 1
    )


async def test_workspace_restore_refuses_an_id_in_use_and_keeps_new_ids_clear(
    db: asyncpg.Connection, workspace: CreatedKey, make: Run
) -> None:
    """Restoring onto a taken id fails and says why; after a restore, new workspaces get
    ids past the restored one instead of colliding with it."""
    taken = make("workspace-restore", "WORKSPACE=other", f"ID={workspace.workspace_id}")
    assert taken.returncode != 0  # make's own 2 for a failed recipe
    assert f"workspace {workspace.workspace_id} exists already" in taken.stderr

    ahead = int(await db.fetchval("SELECT max(id) + 1 FROM workspaces"))
    restored = make("workspace-restore", f"WORKSPACE=r-{uuid.uuid4().hex[:8]}", f"ID={ahead}")
    assert restored.returncode == 0, restored.stderr
    fresh = await db.fetchval(
        "INSERT INTO workspaces (name) VALUES ($1) RETURNING id", f"n-{uuid.uuid4().hex[:8]}"
    )
    assert fresh > ahead


async def test_dlq_list_prints_one_line_per_dead_letter(
    settings: Settings, workspace: CreatedKey, sextant: Run
) -> None:
    """A reason quoting Postgres' DETAIL and HINT lines stays on its dead letter's line."""
    producer: AIOKafkaProducer = make_producer(settings)
    await producer.start()
    try:
        for i in range(2):
            reason = f"value too long\nDETAIL:  key (x)=({i}) is too long\nHINT:  shorten it {i}"
            await producer.send_and_wait(
                settings.kafka_dlq_topic,
                msgspec.json.encode(stamped(workspace, type="track", userId="u1", event="E")),
                key=f"{workspace.workspace_id}:u1".encode(),
                headers=[("reason", reason.encode()), ("source", f"t/0/{i}".encode())],
            )
    finally:
        await producer.stop()
    listed = sextant("dlq", "list")
    lines = listed.stdout.splitlines()
    assert listed.returncode == 0, listed.stderr
    assert len(lines) == 3  # the heading and one line each
    assert "DETAIL: key (x)=(0) is too long HINT: shorten it 0" in lines[1]
    assert lines[2].endswith("HINT: shorten it 1")


def test_an_operator_command_without_services_says_how_to_start_them(sextant: Run) -> None:
    result = sextant("dlq", "list", DATABASE_URL="", KAFKA_BOOTSTRAP_SERVERS="")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "no `make run` stack is running: start one with `make run`" in result.stderr
