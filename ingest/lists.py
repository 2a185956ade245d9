"""Each workspace's suppressed userIds, own unusable identifier values and intake rate,
held in memory by every receiver and reloaded as often as keys, so a change reaches every
pod within seconds."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass

import asyncpg
import structlog

log = structlog.get_logger()


# This receiver reports itself alive, receivers gone for an hour are cleared away, and the
# count of those seen within the window is each one's divisor of a workspace's rate.
_REPORT_AND_COUNT = """
WITH report AS (
    INSERT INTO receivers (id, seen_at) VALUES ($1, now())
    ON CONFLICT (id) DO UPDATE SET seen_at = EXCLUDED.seen_at
), gone AS (
    DELETE FROM receivers WHERE seen_at < now() - interval '1 hour'
)
SELECT 1 + count(*) FROM receivers
 WHERE id <> $1 AND seen_at > now() - make_interval(secs => $2)
"""


@dataclass(frozen=True, slots=True)
class WorkspaceLists:
    suppressed: frozenset[str] = frozenset()  # userIds, as sent
    blocked: frozenset[str] = frozenset()  # identifier values, trimmed and case folded
    calls_per_second: int | None = None  # the workspace's own intake rate, if it has one


NO_LISTS = WorkspaceLists()


class ListStore:
    """Every workspace's lists and rate, by workspace id."""

    def __init__(self, pool: asyncpg.Pool, refresh_seconds: float) -> None:
        self._pool = pool
        self._refresh_seconds = refresh_seconds
        self._lists: dict[int, WorkspaceLists] = {}
        self._id = uuid.uuid4()
        self.live_receivers = 1  # this one, and the others that reported lately
        self.loaded = False

    def of(self, workspace_id: int) -> WorkspaceLists:
        return self._lists.get(workspace_id, NO_LISTS)

    async def load(self) -> None:
        async with self._pool.acquire() as conn:
            suppressed = await conn.fetch("SELECT workspace_id, user_id FROM suppressions")
            blocked = await conn.fetch("SELECT workspace_id, value FROM blocked_identifiers")
            rates = await conn.fetch(
                "SELECT id, calls_per_second FROM workspaces WHERE calls_per_second IS NOT NULL"
            )
            live = await conn.fetchval(_REPORT_AND_COUNT, self._id, self._live_window)
        users: dict[int, set[str]] = defaultdict(set)
        values: dict[int, set[str]] = defaultdict(set)
        for r in suppressed:
            users[r["workspace_id"]].add(r["user_id"])
        for r in blocked:
            values[r["workspace_id"]].add(r["value"])
        rate = {r["id"]: r["calls_per_second"] for r in rates}
        self._lists = {
            ws: WorkspaceLists(
                frozenset(users.get(ws, ())), frozenset(values.get(ws, ())), rate.get(ws)
            )
            for ws in users.keys() | values.keys() | rate.keys()
        }
        self.live_receivers = max(1, int(live))
        self.loaded = True

    @property
    def _live_window(self) -> float:
        # Three missed reloads: a receiver that stopped drops out of the count.
        return 3 * self._refresh_seconds + 1

    async def forget_this_receiver(self) -> None:
        """On shutdown: the others take over its share at their next reload."""
        await self._pool.execute("DELETE FROM receivers WHERE id = $1", self._id)
