"""Each workspace's suppressed userIds and own unusable identifier values, held in memory
by every receiver and reloaded as often as keys, so a change reaches every pod within
seconds."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass

import asyncpg
import structlog

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class WorkspaceLists:
    suppressed: frozenset[str] = frozenset()  # userIds, as sent
    blocked: frozenset[str] = frozenset()  # identifier values, trimmed and case folded


NO_LISTS = WorkspaceLists()


class ListStore:
    """Every workspace's lists, by workspace id."""

    def __init__(self, pool: asyncpg.Pool, refresh_seconds: float) -> None:
        self._pool = pool
        self._refresh_seconds = refresh_seconds
        self._lists: dict[int, WorkspaceLists] = {}
        self.loaded = False

    def of(self, workspace_id: int) -> WorkspaceLists:
        return self._lists.get(workspace_id, NO_LISTS)

    async def load(self) -> None:
        async with self._pool.acquire() as conn:
            suppressed = await conn.fetch("SELECT workspace_id, user_id FROM suppressions")
            blocked = await conn.fetch("SELECT workspace_id, value FROM blocked_identifiers")
        users: dict[int, set[str]] = defaultdict(set)
        values: dict[int, set[str]] = defaultdict(set)
        for r in suppressed:
            users[r["workspace_id"]].add(r["user_id"])
        for r in blocked:
            values[r["workspace_id"]].add(r["value"])
        self._lists = {
            ws: WorkspaceLists(frozenset(users.get(ws, ())), frozenset(values.get(ws, ())))
            for ws in users.keys() | values.keys()
        }
        self.loaded = True

    async def refresh_forever(self) -> None:
        """Reload on a fixed period; a failed reload keeps the lists we have."""
        while True:
            await asyncio.sleep(self._refresh_seconds)
            try:
                await self.load()
            except (OSError, asyncpg.PostgresError) as e:
                log.warning("lists_reload_failed", error=str(e))
