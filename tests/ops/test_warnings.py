"""`sextant warnings` and `make warnings`: each kind after the calls that cause it, newest
first, filtered by kind and time, with what was only counted."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from ops import attributes
from ops.keys import CreatedKey, create_key
from tests.support.calls import call
from tests.support.fixture_types import Run
from worker.unit_of_work import apply_calls

DOOR = [
    {"kind": "field_dropped", "detail": {"field": "traits", "reason": "expected an object"}},
    {"kind": "timestamp_unparsable", "detail": {"field": "timestamp", "value": "soon"}},
]


async def cause_each_kind(pool: asyncpg.Pool, db: asyncpg.Connection, ws: CreatedKey) -> None:
    await attributes.define(db, ws.workspace, "user", "", "seats", "number")
    blocking = await create_key(db, ws.workspace, "blocking", block_free_email=True)
    sextant = {"workspaceId": ws.workspace_id, "connectorId": ws.connector_id, "warnings": DOOR}
    calls = [
        call(ws, type="identify", userId="u1", anonymousId="a1", sextant=sextant),
        call(ws, type="identify", userId="u2", anonymousId="a1", traits={"seats": "lots"}),
        call(
            blocking,
            type="identify",
            userId="u3",
            traits={"email": "x@gmail.com"},
            timestamp="2026-01-01T00:00:01Z",
        ),
    ]
    async with pool.acquire() as conn:
        await apply_calls(conn, calls[:1])
        await apply_calls(conn, calls[1:])


async def test_warnings_lists_each_kind_newest_first_and_filters(
    pool: asyncpg.Pool, db: asyncpg.Connection, workspace: CreatedKey, sextant: Run, make: Run
) -> None:
    await cause_each_kind(pool, db, workspace)
    listed = sextant("warnings", "--workspace", workspace.workspace, "--json")
    assert listed.returncode == 0, listed.stderr
    rows: list[dict[str, Any]] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(r["kind"] for r in rows) == [
        "attribute_not_converted",
        "field_dropped",
        "free_email_blocked",
        "merge_refused",
        "timestamp_unparsable",
    ]
    assert set(rows[0]) == {"kind", "message_id", "user_id", "anonymous_id", "detail", "created_at"}
    assert [r["created_at"] for r in rows] == sorted((r["created_at"] for r in rows), reverse=True)

    only = sextant("warnings", "--workspace", workspace.workspace, "--kind", "merge_refused")
    assert only.returncode == 0, only.stderr
    [line] = only.stdout.splitlines()
    assert "merge_refused" in line
    assert "u2" in line

    later = sextant("warnings", "--workspace", workspace.workspace, "--since", "2999-01-01")
    assert "no ingestion warnings" in later.stdout

    by_make = make("warnings", f"WORKSPACE={workspace.workspace}", "KIND=free_email_blocked")
    assert by_make.returncode == 0, by_make.stderr
    assert "free_email_blocked" in by_make.stdout


async def test_warnings_say_how_many_were_only_counted(
    pool: asyncpg.Pool, workspace: CreatedKey, sextant: Run
) -> None:
    stamp = {
        "workspaceId": workspace.workspace_id,
        "connectorId": workspace.connector_id,
        "warnings": DOOR[:1],
    }
    calls = [call(workspace, type="page", userId=f"u{i}", sextant=stamp) for i in range(130)]
    async with pool.acquire() as conn:
        await apply_calls(conn, calls)
    listed = sextant("warnings", "--workspace", workspace.workspace, "--limit", "500")
    assert len([line for line in listed.stdout.splitlines() if "field_dropped" in line]) == 100
    assert "and 30 more, counted but not kept" in listed.stdout


def test_warnings_of_a_workspace_that_does_not_exist_is_one_line(sextant: Run) -> None:
    missing = sextant("warnings", "--workspace", "no-such-workspace")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "sextant: no workspace named 'no-such-workspace'"
