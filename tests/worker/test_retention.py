"""The messageId ledger keeps at least 7 days and forgets what is older."""

from __future__ import annotations

import asyncpg

from ops.keys import CreatedKey
from worker.retention import prune_once


async def test_prune_keeps_seven_days_and_drops_older(
    pool: asyncpg.Pool, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """Rows 6 days old stay; rows 9 days old go."""
    await db.execute(
        """INSERT INTO processed_messages (workspace_id, message_id, processed_at)
           VALUES ($1, 'young', now() - interval '6 days'),
                  ($1, 'old', now() - interval '9 days')""",
        workspace.workspace_id,
    )
    await prune_once(pool)
    left = await db.fetch(
        "SELECT message_id FROM processed_messages WHERE workspace_id = $1",
        workspace.workspace_id,
    )
    assert [r["message_id"] for r in left] == ["young"]
