"""Privacy and identity lists of a workspace: suppressed userIds (receivers skip their
calls) and the workspace's own unusable identifier values. Receivers reload both every
few seconds, as they reload keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ops.pages import EVERYTHING, Order, Page, PageRequest, fetch_page
from ops.workspaces import workspace_id
from sextant.db import Conn
from sextant.errors import AlreadyExists, NotFound
from sextant.identifiers import BUILT_IN, comparable


async def suppress(conn: Conn, workspace: str, user_id: str) -> bool:
    """Suppress a userId; False if it already was."""
    ws = await workspace_id(conn, workspace)
    status = await conn.execute(
        "INSERT INTO suppressions (workspace_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        ws,
        user_id,
    )
    return status.endswith(" 1")


async def unsuppress(conn: Conn, workspace: str, user_id: str) -> None:
    ws = await workspace_id(conn, workspace)
    status = await conn.execute(
        "DELETE FROM suppressions WHERE workspace_id = $1 AND user_id = $2", ws, user_id
    )
    if status.endswith(" 0"):
        raise NotFound(f"userId {user_id!r} is not suppressed in {workspace!r}")


@dataclass(frozen=True, slots=True)
class Listed:
    """A suppressed userId or a blocked identifier value, and since when."""

    value: str
    created_at: datetime


async def suppressed(conn: Conn, workspace: str, page: PageRequest = EVERYTHING) -> Page[Listed]:
    """Every suppressed userId with when it was suppressed, newest first."""
    return await _listed(conn, workspace, "suppressions", "user_id", page)


async def block_identifier(conn: Conn, workspace: str, value: str) -> str:
    """Add a value to the workspace's unusable identifiers; returns it as it is compared."""
    kept = comparable(value)
    if kept in BUILT_IN:
        raise AlreadyExists(f"{value!r} is blocked for every workspace already")
    ws = await workspace_id(conn, workspace)
    await conn.execute(
        "INSERT INTO blocked_identifiers (workspace_id, value) VALUES ($1, $2) "
        "ON CONFLICT DO NOTHING",
        ws,
        kept,
    )
    return kept


async def unblock_identifier(conn: Conn, workspace: str, value: str) -> None:
    ws = await workspace_id(conn, workspace)
    status = await conn.execute(
        "DELETE FROM blocked_identifiers WHERE workspace_id = $1 AND value = $2",
        ws,
        comparable(value),
    )
    if status.endswith(" 0"):
        raise NotFound(f"{value!r} is not one of {workspace!r}'s blocked values")


async def blocked_identifiers(
    conn: Conn, workspace: str, page: PageRequest = EVERYTHING
) -> Page[Listed]:
    """The workspace's own blocked values, newest first (the built-in ones apply too)."""
    return await _listed(conn, workspace, "blocked_identifiers", "value", page)


async def _listed(
    conn: Conn, workspace: str, table: str, column: str, page: PageRequest
) -> Page[Listed]:
    ws = await workspace_id(conn, workspace)
    rows, cursor = await fetch_page(
        conn,
        f"SELECT {column}, created_at, created_at AS page_time, {column} AS page_key "
        f"FROM {table} WHERE workspace_id = $1",
        [ws],
        Order("created_at", column),
        page,
    )
    return Page([Listed(r[0], r[1]) for r in rows], cursor)
