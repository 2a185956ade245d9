"""The anonymous-id cap against the real Postgres: counted across batches, the ids past it
keep their own anonymous users, and each is warned."""

from __future__ import annotations

import asyncpg

from ops.keys import CreatedKey
from tests.support.calls import call
from worker.rules.state import Limits
from worker.unit_of_work import apply_calls


async def test_a_user_holds_at_most_the_cap_of_anonymous_ids_across_batches(
    pool: asyncpg.Pool, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    limits = Limits(max_anonymous_ids_per_user=3)

    def visit(i: int) -> dict[str, str]:
        return {"type": "track", "userId": "u1", "anonymousId": f"a{i}", "event": "Visited"}

    async with pool.acquire() as conn:
        await apply_calls(conn, [call(workspace, **visit(i)) for i in range(2)], limits)
        outcome = await apply_calls(
            conn, [call(workspace, **visit(i)) for i in range(2, 5)], limits
        )
        later = await apply_calls(conn, [call(workspace, type="page", anonymousId="a4")], limits)
    held = await db.fetch(
        "SELECT a.anonymous_id, u.user_id FROM anonymous_ids a JOIN users u ON u.id = a.user_pk "
        "WHERE a.workspace_id = $1 ORDER BY 1",
        workspace.workspace_id,
    )
    owners = {r["anonymous_id"]: r["user_id"] for r in held}
    assert [a for a, u in owners.items() if u == "u1"] == ["a0", "a1", "a2"]
    assert owners["a4"] is None  # its calls stay with its own anonymous user
    assert outcome.warnings["identity_cap_reached"] == 2
    assert later.calls[("page", "applied")] == 1
    details = await db.fetch(
        "SELECT detail FROM ingestion_warnings WHERE workspace_id = $1 "
        "AND kind = 'identity_cap_reached'",
        workspace.workspace_id,
    )
    assert sorted(d["detail"]["anonymous_id"] for d in details) == ["a3", "a4"]
    assert all(d["detail"]["limit"] == 3 for d in details)
    # Every call still applied to u1 itself: five events.
    assert (
        await db.fetchval(
            "SELECT count(*) FROM events e JOIN users u ON u.id = e.user_pk "
            "WHERE e.workspace_id = $1 AND u.user_id = 'u1'",
            workspace.workspace_id,
        )
        == 5
    )
