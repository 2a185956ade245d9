"""Ingestion warnings: recorded with the calls that cause them, bounded per workspace, kind
and minute across workers, and forgotten after 30 days."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from ops import attributes
from ops.keys import CreatedKey, create_key
from tests.support.calls import call
from tests.support.fixture_types import Apply
from worker.retention import prune_once
from worker.unit_of_work import apply_calls


async def recorded(db: asyncpg.Connection, ws: CreatedKey) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT kind, message_id, user_id, anonymous_id, detail FROM ingestion_warnings "
        "WHERE workspace_id = $1 ORDER BY id",
        ws.workspace_id,
    )
    return [dict(r) for r in rows]


async def test_warnings_from_the_door_travel_with_the_call_and_are_recorded(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    door = {"kind": "field_dropped", "detail": {"field": "traits", "reason": "a string"}}
    sextant = {
        "workspaceId": workspace.workspace_id,
        "connectorId": workspace.connector_id,
        "warnings": [door],
    }
    await apply(
        {
            "type": "identify",
            "userId": "u1",
            "anonymousId": "a1",
            "messageId": "m1",
            "sextant": sextant,
        }
    )
    assert await recorded(db, workspace) == [
        {
            "kind": "field_dropped",
            "message_id": "m1",
            "user_id": "u1",
            "anonymous_id": "a1",
            "detail": door["detail"],
        }
    ]


async def test_a_value_that_does_not_convert_is_recorded_with_its_attribute(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    await attributes.define(db, workspace.workspace, "user", "", "seats", "number")
    outcome = await apply({"type": "identify", "userId": "u1", "traits": {"seats": "lots"}})
    [row] = await recorded(db, workspace)
    assert row["kind"] == "attribute_not_converted"
    assert row["detail"] == {"entity": "user", "name": "seats", "type": "number", "value": "lots"}
    assert outcome.warnings["attribute_not_converted"] == 1


async def test_each_call_ignored_for_a_free_email_is_recorded(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    await create_key(db, workspace.workspace, workspace.connector, block_free_email=True)
    await apply(
        {"type": "identify", "userId": "u1", "traits": {"email": "j@gmail.com"}},
        {"type": "track", "userId": "u1", "event": "E"},
    )
    rows = await recorded(db, workspace)
    assert [r["kind"] for r in rows] == ["free_email_blocked", "free_email_blocked"]
    assert "free email" in rows[0]["detail"]["rule"]


async def test_a_merge_of_two_user_ids_is_refused_and_recorded(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    await apply({"type": "identify", "userId": "u1", "anonymousId": "a1"})
    await apply({"type": "identify", "userId": "u2", "anonymousId": "a1", "messageId": "m2"})
    [row] = await recorded(db, workspace)
    assert (row["kind"], row["message_id"], row["user_id"]) == ("merge_refused", "m2", "u2")
    assert row["detail"]["belongs_to_user_id"] == "u1"
    assert row["detail"]["anonymous_id"] == "a1"


def noisy(workspace: CreatedKey, n: int, minute: str = "00", who: str = "") -> list[Any]:
    """Calls of one minute, each carrying one door warning."""
    sextant = {
        "workspaceId": workspace.workspace_id,
        "connectorId": workspace.connector_id,
        "warnings": [{"kind": "field_coerced", "detail": {"field": "userId"}}],
    }
    return [
        call(
            workspace,
            type="page",
            userId=f"{who}u{i % 40}",
            sextant=sextant,
            receivedAt=f"2026-01-01T00:{minute}:{i % 60:02d}.000Z",
        )
        for i in range(n)
    ]


async def test_at_most_100_a_minute_are_recorded_across_concurrent_workers_and_all_counted(
    pool: asyncpg.Pool, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """Six workers' batches of one minute, 600 warnings: 100 rows, a tally of 600, and
    another minute starts its own 100."""

    async def worker(part: list[Any]) -> None:
        for start in range(0, len(part), 25):
            async with pool.acquire() as conn:
                await apply_calls(conn, part[start : start + 25])

    # Each worker its own users, as partitions keep them apart; the minute is shared.
    await asyncio.gather(*(worker(noisy(workspace, 100, who=f"w{w}-")) for w in range(6)))
    async with pool.acquire() as conn:
        await apply_calls(conn, noisy(workspace, 150, minute="01"))
    rows = await db.fetchval(
        "SELECT count(*) FROM ingestion_warnings WHERE workspace_id = $1", workspace.workspace_id
    )
    tallies = await db.fetch(
        "SELECT minute, seen FROM ingestion_warning_tallies WHERE workspace_id = $1 "
        "ORDER BY minute",
        workspace.workspace_id,
    )
    assert rows == 200
    assert [t["seen"] for t in tallies] == [600, 150]


async def test_warnings_older_than_30_days_are_forgotten(
    pool: asyncpg.Pool, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    await db.execute(
        """INSERT INTO ingestion_warnings (workspace_id, kind, detail, created_at)
           VALUES ($1, 'young', '{}', now() - interval '29 days'),
                  ($1, 'old', '{}', now() - interval '31 days')""",
        workspace.workspace_id,
    )
    await prune_once(pool)
    left = await db.fetch(
        "SELECT kind FROM ingestion_warnings WHERE workspace_id = $1", workspace.workspace_id
    )
    assert [r["kind"] for r in left] == ["young"]
