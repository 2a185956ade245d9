"""Calls arriving after newer calls whose fate they change: deletes by receipt, an
anonymous id claimed by two userIds, free-email blocking by call time. Each case is applied
in both arrival orders against the real Postgres, and both leave the same rows."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from ops.keys import CreatedKey, create_key
from tests.support.calls import call
from tests.support.dumps import dump, visible
from worker.unit_of_work import Outcome, apply_calls

Message = dict[str, Any]
Run = Callable[[list[list[Message]]], Awaitable[tuple[CreatedKey, list[Outcome]]]]


@pytest.fixture
def run(pool: asyncpg.Pool, db: asyncpg.Connection) -> Run:
    """Apply batches of messages to a new workspace whose connector blocks free email."""

    async def apply(batches: list[list[Message]]) -> tuple[CreatedKey, list[Outcome]]:
        workspace = await create_key(db, f"late-{uuid.uuid4().hex[:10]}", block_free_email=True)
        outcomes = []
        async with pool.acquire() as conn:
            for batch in batches:
                outcomes.append(await apply_calls(conn, [call(workspace, **m) for m in batch]))
        return workspace, outcomes

    return apply


async def both_orders(
    run: Run, db: asyncpg.Connection, first: list[Message], then: list[Message]
) -> tuple[CreatedKey, list[Outcome]]:
    """`first` then `then`, and the reverse; asserts both leave the same rows and returns
    the run where `then` came last."""
    for message in first + then:
        message.setdefault("messageId", uuid.uuid4().hex)
    reverse, _ = await run([then, first])
    forward, outcomes = await run([first, then])
    assert visible(await dump(db, forward.workspace_id)) == visible(
        await dump(db, reverse.workspace_id)
    )
    return forward, outcomes


async def users(db: asyncpg.Connection, ws: CreatedKey) -> dict[str, dict[str, Any]]:
    rows = await db.fetch(
        "SELECT user_id, traits, email FROM users WHERE workspace_id = $1 AND user_id IS NOT NULL",
        ws.workspace_id,
    )
    return {r["user_id"]: dict(r) for r in rows}


async def events_of(db: asyncpg.Connection, ws: CreatedKey) -> dict[str, str | None]:
    rows = await db.fetch(
        "SELECT e.name, u.user_id FROM events e JOIN users u ON u.id = e.user_pk "
        "WHERE e.workspace_id = $1",
        ws.workspace_id,
    )
    return {r["name"]: r["user_id"] for r in rows}


async def test_a_delete_removes_a_call_received_before_it_whatever_time_it_carries(
    run: Run, db: asyncpg.Connection
) -> None:
    """An identify received at 10:00 stamped 10:05 (a clock ahead, within the tolerance),
    then a delete received at 10:01: the identify is removed, in either arrival order. An
    identify received after the delete and stamped after it makes the user afresh."""
    forged = {
        "type": "identify",
        "userId": "u1",
        "traits": {"plan": "forged"},
        "timestamp": "2026-03-01T10:05:00Z",
        "receivedAt": "2026-03-01T10:00:00.000Z",
    }
    delete = {
        "type": "delete",
        "userId": "u1",
        "timestamp": "2026-03-01T10:01:00Z",
        "receivedAt": "2026-03-01T10:01:00.000Z",
    }
    ws, outcomes = await both_orders(run, db, [forged], [delete])
    assert await users(db, ws) == {}
    assert outcomes[1].rebuilt == 2  # the delete found the user it must rebuild
    afresh = {
        "type": "identify",
        "userId": "u1",
        "traits": {"seats": "3"},
        "timestamp": "2026-03-01T10:06:00Z",
        "receivedAt": "2026-03-01T10:06:00.000Z",
    }
    ws, _ = await both_orders(run, db, [forged, delete], [afresh])
    assert (await users(db, ws))["u1"]["traits"] == {"seats": "3"}


async def test_an_anonymous_id_belongs_to_the_earliest_claim_whatever_arrives_first(
    run: Run, db: asyncpg.Connection
) -> None:
    """A shared browser: u2 names a1 at 10:05, u1 named it at 10:00 but arrives later. a1,
    and the call made with a1 alone, belong to u1; u2 keeps its own call."""
    visitor = {"type": "track", "anonymousId": "a1", "event": "Visited",
               "timestamp": "2026-03-01T09:00:00Z"}  # fmt: skip
    late_claim = {"type": "identify", "userId": "u2", "anonymousId": "a1",
                  "traits": {"plan": "u2"}, "timestamp": "2026-03-01T10:05:00Z"}  # fmt: skip
    early_claim = {"type": "track", "userId": "u1", "anonymousId": "a1", "event": "Signed In",
                   "timestamp": "2026-03-01T10:00:00Z"}  # fmt: skip
    ws, outcomes = await both_orders(run, db, [visitor, late_claim], [early_claim])
    owner = await db.fetchval(
        "SELECT u.user_id FROM anonymous_ids a JOIN users u ON u.id = a.user_pk "
        "WHERE a.workspace_id = $1 AND a.anonymous_id = 'a1'",
        ws.workspace_id,
    )
    assert owner == "u1"
    assert await events_of(db, ws) == {"Visited": "u1", "Signed In": "u1"}
    assert (await users(db, ws))["u2"]["traits"] == {"plan": "u2"}
    assert outcomes[1].rebuilt > 0
    refused = await db.fetchval(
        "SELECT count(*) FROM ingestion_warnings WHERE workspace_id = $1 AND kind = "
        "'merge_refused' AND user_id = 'u2'",
        ws.workspace_id,
    )
    assert refused >= 1


async def test_a_late_work_email_lets_in_the_calls_after_it(
    run: Run, db: asyncpg.Connection
) -> None:
    """A free address at 10:00 blocks u1; a track at 10:10 is ignored when it arrives; the
    identify with a work address at 10:05 arrives last and lets the track in."""
    free = {"type": "identify", "userId": "u1", "traits": {"email": "jo@gmail.com"},
            "timestamp": "2026-03-01T10:00:00Z"}  # fmt: skip
    track = {"type": "track", "userId": "u1", "event": "Paid",
             "timestamp": "2026-03-01T10:10:00Z"}  # fmt: skip
    work = {"type": "identify", "userId": "u1", "traits": {"email": "jo@initech.com"},
            "timestamp": "2026-03-01T10:05:00Z"}  # fmt: skip
    ws, outcomes = await both_orders(run, db, [free, track], [work])
    assert outcomes[0].calls[("track", "blocked")] == 1
    assert await events_of(db, ws) == {"Paid": "u1"}
    assert (await users(db, ws))["u1"]["email"] == "jo@initech.com"


async def test_a_late_free_email_blocks_the_calls_after_it(
    run: Run, db: asyncpg.Connection
) -> None:
    """A track at 10:10 is applied; the identify with a free address at 10:00 arrives after
    it: the track is taken back out, as it would have been ignored in order."""
    track = {"type": "track", "userId": "u1", "event": "Paid",
             "timestamp": "2026-03-01T10:10:00Z"}  # fmt: skip
    free = {"type": "identify", "userId": "u1", "traits": {"email": "jo@gmail.com"},
            "timestamp": "2026-03-01T10:00:00Z"}  # fmt: skip
    ws, outcomes = await both_orders(run, db, [track], [free])
    assert outcomes[0].calls[("track", "applied")] == 1
    assert await events_of(db, ws) == {}
    assert await users(db, ws) == {}


async def test_calls_in_order_rebuild_nothing(run: Run, db: asyncpg.Connection) -> None:
    messages = [
        {"type": "identify", "userId": "u1", "anonymousId": "a1",
         "traits": {"email": "jo@initech.com"}, "timestamp": f"2026-03-01T10:0{i}:00Z"}
        for i in range(3)
    ] + [{"type": "delete", "userId": "u9", "timestamp": "2026-03-01T10:09:00Z"}]  # fmt: skip
    _, outcomes = await run([[m] for m in messages])
    assert [o.rebuilt for o in outcomes] == [0, 0, 0, 0]


async def test_the_journal_keeps_nothing_personal_of_what_a_delete_removed(
    run: Run, db: asyncpg.Connection
) -> None:
    """A delete is a privacy request: of the calls naming the deleted userId, the journal
    keeps whom they named and when, not what they said (traits, properties, context); a
    call arriving after the delete that it ignores is stripped as it is kept. (A call with
    only an anonymous id is kept whole: its id may yet turn out to be another user's.)"""
    said = [
        {"type": "identify", "userId": "u1", "anonymousId": "a1",
         "traits": {"email": "jo@initech.com", "phone": "+1 555 0100", "plan": "secret"},
         "context": {"ip": "203.0.113.9", "userAgent": "Mozilla/5.0 (Secret)"},
         "timestamp": "2026-03-01T10:00:00Z"},
        {"type": "page", "userId": "u1", "name": "Secret page",
         "properties": {"url": "https://initech.com/secret"},
         "timestamp": "2026-03-01T10:02:00Z"},
    ]  # fmt: skip
    delete = {"type": "delete", "userId": "u1", "timestamp": "2026-03-01T11:00:00Z",
              "receivedAt": "2026-03-01T11:00:00.000Z"}  # fmt: skip
    late = {"type": "track", "userId": "u1", "event": "Late", "properties": {"note": "secret"},
            "timestamp": "2026-03-01T10:30:00Z"}  # fmt: skip
    ws, _ = await run([said, [delete], [late]])
    bodies = await db.fetch(
        "SELECT convert_from(body, 'UTF8') AS body FROM call_journal WHERE workspace_id = $1",
        ws.workspace_id,
    )
    assert len(bodies) == 4
    for row in bodies:
        for secret in ("secret", "Secret", "555", "203.0.113.9"):
            assert secret not in row["body"]
    assert any("jo@initech.com" in r["body"] for r in bodies)  # the email identity stays
    assert await users(db, ws) == {}


async def test_a_delete_removes_a_user_blocked_for_a_free_email(
    run: Run, db: asyncpg.Connection
) -> None:
    """No free-email status stands in the way of a privacy request."""
    known = {"type": "identify", "userId": "u1", "traits": {"plan": "pro"},
             "timestamp": "2026-03-01T10:00:00Z"}  # fmt: skip
    free = {"type": "identify", "userId": "u1", "traits": {"email": "jo@gmail.com"},
            "timestamp": "2026-03-01T10:01:00Z"}  # fmt: skip
    delete = {"type": "delete", "userId": "u1", "timestamp": "2026-03-01T10:02:00Z"}
    ws, outcomes = await run([[known], [free], [delete]])
    assert outcomes[2].calls[("delete", "applied")] == 1
    assert await users(db, ws) == {}
