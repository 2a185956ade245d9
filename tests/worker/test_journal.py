"""The call journal is the record of what was applied: each call is journaled as the
worker decoded it, whatever its text holds, is applied once per messageId, and is kept
for good (the background prune forgets old warnings, never what was applied)."""

from __future__ import annotations

import uuid
from collections import Counter

import asyncpg
import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops.keys import CreatedKey
from sextant.calls import decode_call
from tests.support.calls import call
from worker.retention import prune_once
from worker.unit_of_work import apply_calls

# Text as clients send it: quotes, backslashes, braces and commas (array and JSON syntax),
# line separators, escapes spelled out, and characters outside the BMP. No NUL and no
# lone surrogates: the receiver never lets those through.
_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=40,
) | st.sampled_from(['"', "\\", "{a,b}", "\\u0041", "\u2028", "😀", "NULL", " "])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(user_id=_TEXT, anonymous_id=_TEXT, trait=_TEXT)
async def test_a_call_is_journaled_exactly_whatever_its_text(
    pool: asyncpg.Pool,
    db: asyncpg.Connection,
    workspace: CreatedKey,
    user_id: str,
    anonymous_id: str,
    trait: str,
) -> None:
    """The journal row names the call's identities and holds the call as the worker
    encodes it, byte for byte, so that a rebuild replays the same call."""
    applied = call(
        workspace,
        type="identify",
        userId=user_id,
        anonymousId=anonymous_id,
        traits={"note": trait, trait: 1},
        messageId=f"m-{uuid.uuid4().hex}",
    )
    async with pool.acquire() as conn:
        await apply_calls(conn, [applied])
    row = await db.fetchrow(
        "SELECT identities, version, body FROM call_journal WHERE workspace_id = $1 "
        "AND message_id = $2",
        workspace.workspace_id,
        applied.messageId,
    )
    assert row["identities"] == [f"{k[1]}:{k[2]}" for k in applied.identities]
    assert row["version"] == applied.version
    assert row["body"] == msgspec.json.encode(applied)
    assert decode_call(row["body"]) == applied


async def test_a_messageid_twice_in_a_batch_is_journaled_and_applied_once(
    pool: asyncpg.Pool, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """The first of the two is the one applied."""
    first = call(workspace, type="track", userId="u-1", event="First", messageId="m-twice")
    second = call(workspace, type="track", userId="u-1", event="Second", messageId="m-twice")
    async with pool.acquire() as conn:
        outcome = await apply_calls(conn, [first, second])
    bodies = await db.fetch(
        "SELECT body FROM call_journal WHERE workspace_id = $1", workspace.workspace_id
    )
    events = await db.fetch(
        "SELECT name FROM events WHERE workspace_id = $1", workspace.workspace_id
    )
    assert outcome.calls == Counter({("track", "applied"): 1, ("track", "duplicate"): 1})
    assert [decode_call(r["body"]) for r in bodies] == [first]
    assert [r["name"] for r in events] == ["First"]


async def test_a_call_applied_long_ago_is_still_a_duplicate(
    pool: asyncpg.Pool, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """A call applied a year ago and delivered again (a replay of an old backfill) changes
    nothing, after the prune has run."""
    old = call(workspace, type="track", userId="u-1", event="Imported", messageId="m-old")
    async with pool.acquire() as conn:
        first = await apply_calls(conn, [old])
    await db.execute(
        "UPDATE call_journal SET applied_at = now() - interval '365 days' WHERE workspace_id = $1",
        workspace.workspace_id,
    )
    await prune_once(pool)
    async with pool.acquire() as conn:
        again = await apply_calls(conn, [old])
    events = await db.fetchval(
        "SELECT count(*) FROM events WHERE workspace_id = $1", workspace.workspace_id
    )
    assert first.calls == Counter({("track", "applied"): 1})
    assert again.calls == Counter({("track", "duplicate"): 1})
    assert events == 1
