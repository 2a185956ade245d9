"""Workers touching the same account at once: no deadlocks, no lost updates."""

from __future__ import annotations

import asyncio

import asyncpg

from ops.keys import CreatedKey
from sextant.errors import BatchConflict
from tests.support.calls import call
from worker.unit_of_work import apply_calls

WORKERS, BATCHES, PER_BATCH = 8, 12, 25


async def test_concurrent_batches_on_one_hot_account(
    pool: asyncpg.Pool, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """Eight workers' batches of group and track calls on one account, all at once: every
    batch commits at its first try (the first to meet the new group creates it, the others
    wait for it), and the account ends with every member and the newest traits."""
    deadlocks = 0
    retries = 0

    async def worker(w: int) -> None:
        nonlocal deadlocks, retries
        for b in range(BATCHES):
            calls = []
            for i in range(PER_BATCH):
                n = (b * PER_BATCH + i) * WORKERS + w  # a global order for timestamps
                second, micro = divmod(n, 1000)
                when = f"2026-01-01T00:{second // 60:02d}:{second % 60:02d}.{micro:03d}Z"
                user = f"w{w}-u{i}"
                calls.append(
                    call(
                        workspace,
                        type="group",
                        userId=user,
                        groupId="hot",
                        timestamp=when,
                        traits={"plan": f"plan-{n}", "seats": n},
                    )
                )
                calls.append(
                    call(workspace, type="track", userId=user, event="Used", timestamp=when)
                )
            while True:
                try:
                    async with pool.acquire() as conn:
                        await apply_calls(conn, calls)
                    break
                except asyncpg.DeadlockDetectedError:
                    deadlocks += 1
                    raise
                except (BatchConflict, asyncpg.UniqueViolationError):
                    retries += 1  # the runner would retry; counted, as it should not happen

    await asyncio.gather(*(worker(w) for w in range(WORKERS)))
    newest = WORKERS * BATCHES * PER_BATCH - 1
    account = await db.fetchrow(
        "SELECT id, plan, traits FROM accounts WHERE workspace_id = $1 AND group_id = 'hot'",
        workspace.workspace_id,
    )
    members = await db.fetchval(
        "SELECT count(*) FROM account_users WHERE workspace_id = $1 AND account_pk = $2",
        workspace.workspace_id,
        account["id"],
    )
    events = await db.fetchval(
        "SELECT count(*) FROM events WHERE workspace_id = $1", workspace.workspace_id
    )
    assert (deadlocks, retries) == (0, 0)
    assert (account["plan"], account["traits"]) == (f"plan-{newest}", {"seats": str(newest)})
    assert members == WORKERS * PER_BATCH
    assert events == WORKERS * BATCHES * PER_BATCH
