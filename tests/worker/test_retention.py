"""Applied messageIds are kept for good, in the call journal: the background prune
forgets old warnings, never what was applied."""

from __future__ import annotations

from collections import Counter

import asyncpg

from ops.keys import CreatedKey
from tests.support.calls import call
from worker.retention import prune_once
from worker.unit_of_work import apply_calls


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
