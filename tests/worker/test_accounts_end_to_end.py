"""Accounts from every call and Engage's email-only calls through the whole system: Segment's
partner delivery (`/segment`), the broker, a worker, Postgres."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from ops.keys import CreatedKey
from tests.support.helpers import basic_auth, eventually
from worker.consumer import Worker

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "segment"


def fixture(name: str, at: str) -> dict[str, Any]:
    return {**json.loads((FIXTURES / f"{name}.json").read_text()), "timestamp": at}


async def test_b2b_and_engage_calls_sent_as_segment_sends_them_land_as_rows(
    receiver: str,
    workspace: CreatedKey,
    db: asyncpg.Connection,
    http: aiohttp.ClientSession,
    start_worker: Callable[[], Awaitable[Worker]],
) -> None:
    await start_worker()
    engage = fixture("engage_audience_track", "2026-03-01T12:00:00Z")
    del engage["userId"]
    engage["context"]["traits"] = {"email": "jo@initech.com"}
    calls = [
        {"type": "identify", "userId": "019mr8mf4r", "timestamp": "2026-03-01T09:00:00Z",
         "traits": {"email": "jo@initech.com", "company": {"id": "acct_123", "name": "Initech",
                                                          "plan": "enterprise"}}},
        fixture("b2b_account_added_user", "2026-03-01T10:00:00Z"),
        fixture("b2b_account_removed_user", "2026-03-01T11:00:00Z"),
        {"type": "track", "userId": "u2", "event": "Signed In",
         "context": {"groupId": "acct_456"}, "timestamp": "2026-03-01T10:00:00Z"},
        fixture("b2b_account_deleted", "2026-03-01T10:30:00Z")
        | {"userId": "u2", "context": {"groupId": "acct_456"}},
        engage,
    ]  # fmt: skip
    for n, message in enumerate(calls):
        async with http.post(
            f"{receiver}/segment",
            json={**message, "messageId": f"e2e-{n}"},
            headers=basic_auth(workspace.api_key),
        ) as response:
            assert response.status == 200, await response.text()

    async def applied() -> bool:
        count = await db.fetchval(
            "SELECT count(*) FROM events WHERE workspace_id = $1", workspace.workspace_id
        )
        return bool(count == 5)

    await eventually(applied)
    ws = workspace.workspace_id
    accounts = await db.fetch(
        "SELECT group_id, name, plan FROM accounts WHERE workspace_id = $1", ws
    )
    members = await db.fetchval("SELECT count(*) FROM account_users WHERE workspace_id = $1", ws)
    user = await db.fetchrow(
        "SELECT u.traits, (SELECT array_agg(v.name ORDER BY v.occurred_at) FROM events v "
        "WHERE v.workspace_id = u.workspace_id AND v.user_pk = u.id) AS events "
        "FROM users u WHERE u.workspace_id = $1 AND u.user_id = '019mr8mf4r'",
        ws,
    )
    assert [tuple(a) for a in accounts] == [("acct_123", "Initech", "enterprise")]
    assert members == 0  # removed from acct_123; acct_456 deleted after u2 signed in
    assert user is not None
    assert user["traits"] == {"first_time_shopper": True}
    assert user["events"] == ["Account Added User", "Account Removed User", "Audience Entered"]
