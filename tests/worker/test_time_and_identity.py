"""Time and identity as real traffic carries them, through a receiver and a worker: skewed
and future clocks, ids that are no identity, the anonymous-id cap."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest

from ops import privacy
from ops.keys import CreatedKey
from sextant.settings import Settings
from tests.support.helpers import basic_auth, eventually
from tests.support.sender import kafka_messages, send
from worker.consumer import Worker

pytestmark = pytest.mark.slow


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def user_row(db: asyncpg.Connection, ws: CreatedKey, user_id: str) -> dict[str, Any] | None:
    row = await db.fetchrow(
        "SELECT traits, last_seen_at FROM users WHERE workspace_id = $1 AND user_id = $2",
        ws.workspace_id,
        user_id,
    )
    return dict(row) if row else None


async def warnings_of(db: asyncpg.Connection, ws: CreatedKey, kind: str) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT user_id, detail FROM ingestion_warnings WHERE workspace_id = $1 AND kind = $2",
        ws.workspace_id,
        kind,
    )
    return [dict(r) for r in rows]


async def test_a_2099_identify_is_clamped_warned_and_loses_to_a_later_call(
    receiver: str,
    http: aiohttp.ClientSession,
    workspace: CreatedKey,
    db: asyncpg.Connection,
    start_worker: Callable[[], Awaitable[Worker]],
) -> None:
    await start_worker()
    auth = basic_auth(workspace.api_key)
    skewed = {"userId": "skew-1", "traits": {"plan": "A"}, "timestamp": "2099-01-01T00:00:00Z"}
    await send(http, f"{receiver}/v1/identify", skewed, headers=auth)
    await send(
        http,
        f"{receiver}/v1/page",
        {"userId": "skew-1", "timestamp": "2099-01-01T00:00:00Z"},
        headers=auth,
    )
    await send(
        http, f"{receiver}/v1/identify", {"userId": "skew-1", "traits": {"plan": "B"}}, headers=auth
    )

    async def plan_b() -> bool:
        row = await user_row(db, workspace, "skew-1")
        return row is not None and row["traits"].get("plan") == "B"

    await eventually(plan_b)
    row = await user_row(db, workspace, "skew-1")
    assert row is not None
    assert row["last_seen_at"] < datetime.now(UTC) + timedelta(minutes=1)
    future = await warnings_of(db, workspace, "timestamp_in_future")
    assert len(future) == 2
    assert future[0]["detail"]["call_time"] == "2099-01-01T00:00:00.000000Z"


async def test_a_device_clock_an_hour_ahead_is_corrected_on_v1_and_not_on_segment(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey, settings: Settings
) -> None:
    """analytics libraries stamp timestamp and sentAt with the device's clock; Segment's
    partner delivery has corrected it already."""
    now = datetime.now(UTC)
    ahead = now + timedelta(hours=1)
    device = {"event": "E", "timestamp": iso(ahead - timedelta(seconds=10)), "sentAt": iso(ahead)}
    auth = basic_auth(workspace.api_key)
    await send(
        http, f"{receiver}/v1/track", {"userId": "u1", **device, "messageId": "lib"}, headers=auth
    )
    segment = {"type": "track", "userId": "u1", "event": "E", "messageId": "seg",
               "timestamp": iso(now - timedelta(minutes=3)), "sentAt": iso(ahead)}  # fmt: skip
    await send(http, f"{receiver}/segment", segment, headers=auth)
    times = {m["messageId"]: m["sextant"]["callTime"] for _, m in await kafka_messages(settings, 2)}
    corrected = datetime.fromisoformat(times["lib"])
    assert abs(corrected - (now - timedelta(seconds=10))) < timedelta(seconds=5)
    assert datetime.fromisoformat(times["seg"]) == now - timedelta(minutes=3)


@pytest.mark.parametrize(
    "value",
    ["null", "NULL ", "undefined", "0", "-1", "[object Object]", "NaN", "None", "nil", "  ",
     "anonymous", "00000000-0000-0000-0000-000000000000", "true"],
)  # fmt: skip
async def test_each_blocked_value_counts_as_absent(
    receiver: str,
    http: aiohttp.ClientSession,
    workspace: CreatedKey,
    settings: Settings,
    value: str,
) -> None:
    """As a userId beside a real anonymousId it is dropped (warned); alone it is refused,
    the reason naming it."""
    auth = basic_auth(workspace.api_key)
    kept = await send(
        http,
        f"{receiver}/v1/track",
        {"userId": value, "anonymousId": "a1", "event": "E"},
        headers=auth,
    )
    refused = await send(
        http, f"{receiver}/v1/track", {"userId": value, "event": "E"}, headers=auth
    )
    [(key, message)] = await kafka_messages(settings, 1)
    assert (kept.status, refused.status) == (200, 400)
    assert "userId" not in message
    assert key == f"{workspace.workspace_id}:a1".encode()
    if value.strip():
        assert repr(value) in refused.body["message"]
        assert [w["kind"] for w in message["sextant"]["warnings"]] == ["blocked_identifier"]


async def test_a_workspaces_own_blocked_value_is_known_to_receivers_within_5_seconds(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey, db: asyncpg.Connection
) -> None:
    auth = basic_auth(workspace.api_key)
    before = await send(
        http, f"{receiver}/v1/track", {"userId": "test-user", "event": "E"}, headers=auth
    )
    await privacy.block_identifier(db, workspace.workspace, "Test-User")

    async def refused() -> bool:
        answer = await send(
            http, f"{receiver}/v1/track", {"userId": "test-user", "event": "E"}, headers=auth
        )
        return answer.status == 400

    await eventually(refused, timeout=5)
    assert before.status == 200


async def test_a_deletion_removes_a_user_whose_calls_carried_a_forged_time(
    receiver: str,
    http: aiohttp.ClientSession,
    workspace: CreatedKey,
    db: asyncpg.Connection,
    start_worker: Callable[[], Awaitable[Worker]],
) -> None:
    """An identify stamped 2099, then Segment's deletion request (its time from 2020, in Go's
    format): the user is gone, and an older call arriving after stays ignored."""
    await start_worker()
    auth = basic_auth(workspace.api_key)
    forged = {"userId": "forged-1", "traits": {"plan": "A"}, "timestamp": "2099-01-01T00:00:00Z"}
    await send(http, f"{receiver}/v1/identify", forged, headers=auth)

    async def created() -> bool:
        return await user_row(db, workspace, "forged-1") is not None

    await eventually(created)
    deletion = {
        "type": "delete",
        "userId": "forged-1",
        "originalTimestamp": "2020-05-09 23:54:49.209808489 +0000 UTC m=+70366.298768264",
        "integrations": [],
    }
    assert (await send(http, f"{receiver}/segment", deletion, headers=auth)).status == 200
    old = {
        "userId": "forged-1",
        "event": "Late",
        "timestamp": iso(datetime.now(UTC) - timedelta(hours=1)),
    }
    await send(http, f"{receiver}/v1/track", old, headers=auth)

    async def gone() -> bool:
        return await user_row(db, workspace, "forged-1") is None

    await eventually(gone)
    late_applied = await db.fetchval(
        "SELECT count(*) FROM call_journal p JOIN events e USING (workspace_id, message_id) "
        "WHERE p.workspace_id = $1",
        workspace.workspace_id,
    )
    assert late_applied == 0
