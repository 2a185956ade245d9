"""Workspaces: creating one, finding one by name, and putting back one a Postgres restore
lost, so that calls still in Kafka apply again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ops.pages import EVERYTHING, Order, Page, PageRequest, fetch_page
from sextant.db import Conn
from sextant.errors import AlreadyExists, InvalidInput, NotFound


async def create_workspace(conn: Conn, name: str) -> int:
    """Create the workspace `name`, or fail if it exists."""
    created = await conn.fetchval(
        "INSERT INTO workspaces (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id", name
    )
    if created is None:
        raise AlreadyExists(f"workspace {name!r} already exists")
    return int(created)


async def workspace_id(conn: Conn, name: str) -> int:
    """The id of the workspace `name`; an AdminError if there is none."""
    found = await conn.fetchval("SELECT id FROM workspaces WHERE name = $1", name)
    if found is None:
        raise NotFound(f"no workspace named {name!r}")
    return int(found)


_RESTORE = """
INSERT INTO workspaces (id, name) OVERRIDING SYSTEM VALUE VALUES ($1, $2)
ON CONFLICT DO NOTHING
RETURNING id
"""
_ADVANCE_SEQUENCE = """
SELECT setval(s.seq, greatest((SELECT max(id) FROM workspaces),
                              coalesce(pg_sequence_last_value(s.seq), 1)))
  FROM (SELECT pg_get_serial_sequence('workspaces', 'id')::regclass AS seq) s
"""


async def restore_workspace(conn: Conn, restored_id: int, name: str) -> None:
    """Create workspace `name` with the id its calls carry (see `sextant dlq list`).

    Calls are stamped with the workspace id, so a workspace made anew under a new id
    would not own them: only the old id fixes calls dead-lettered for a missing workspace.
    """
    async with conn.transaction():
        # Other inserts wait until the identity sequence is past the restored id.
        await conn.execute("LOCK TABLE workspaces IN EXCLUSIVE MODE")
        if await conn.fetchval(_RESTORE, restored_id, name) is None:
            holder = await conn.fetchval("SELECT name FROM workspaces WHERE id = $1", restored_id)
            if holder is not None:
                raise AlreadyExists(f"workspace {restored_id} exists already, named {holder!r}")
            raise AlreadyExists(f"a workspace named {name!r} exists already, with another id")
        await conn.execute(_ADVANCE_SEQUENCE)


async def set_intake_rate(conn: Conn, name: str, calls_per_second: int) -> None:
    """Hold the workspace to `calls_per_second` (contract 7.8); 0 puts it back on the
    receivers' default, `WORKSPACE_CALLS_PER_SECOND`."""
    if calls_per_second < 0:
        raise InvalidInput("calls per second cannot be negative")
    status = await conn.execute(
        "UPDATE workspaces SET calls_per_second = $2 WHERE name = $1",
        name,
        calls_per_second or None,
    )
    if status.endswith(" 0"):
        raise NotFound(f"no workspace named {name!r}")


async def intake_rate(conn: Conn, name: str) -> int | None:
    """The workspace's own rate, or None when it follows the default."""
    row = await conn.fetchrow("SELECT calls_per_second FROM workspaces WHERE name = $1", name)
    if row is None:
        raise NotFound(f"no workspace named {name!r}")
    rate = row["calls_per_second"]
    return None if rate is None else int(rate)


@dataclass(frozen=True, slots=True)
class WorkspaceInfo:
    name: str
    calls_per_second: int | None  # None: WORKSPACE_CALLS_PER_SECOND
    created_at: datetime


async def list_workspaces(conn: Conn, page: PageRequest = EVERYTHING) -> Page[WorkspaceInfo]:
    rows, cursor = await fetch_page(
        conn,
        "SELECT name, calls_per_second, created_at, created_at AS page_time, name AS page_key "
        "FROM workspaces WHERE true",
        [],
        Order("created_at", "name"),
        page,
    )
    return Page([WorkspaceInfo(*r[:3]) for r in rows], cursor)
