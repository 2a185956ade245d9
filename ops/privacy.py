"""Privacy and identity lists of a workspace: suppressed userIds (receivers skip their
calls) and the workspace's own unusable identifier values. Receivers reload both every
few seconds, as they reload keys."""

from __future__ import annotations

from ops.workspaces import workspace_id
from sextant.db import Conn
from sextant.errors import AdminError
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
        raise AdminError(f"userId {user_id!r} is not suppressed in {workspace!r}")


async def suppressed(conn: Conn, workspace: str) -> list[tuple[str, str]]:
    """(userId, since) of every suppressed userId, newest first."""
    ws = await workspace_id(conn, workspace)
    rows = await conn.fetch(
        "SELECT user_id, created_at FROM suppressions WHERE workspace_id = $1 "
        "ORDER BY created_at DESC, user_id",
        ws,
    )
    return [(r["user_id"], r["created_at"].isoformat(timespec="seconds")) for r in rows]


async def block_identifier(conn: Conn, workspace: str, value: str) -> str:
    """Add a value to the workspace's unusable identifiers; returns it as it is compared."""
    kept = comparable(value)
    if kept in BUILT_IN:
        raise AdminError(f"{value!r} is blocked for every workspace already")
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
        raise AdminError(f"{value!r} is not one of {workspace!r}'s blocked values")


async def blocked_identifiers(conn: Conn, workspace: str) -> list[str]:
    """The workspace's own blocked values (the built-in ones apply too)."""
    ws = await workspace_id(conn, workspace)
    rows = await conn.fetch(
        "SELECT value FROM blocked_identifiers WHERE workspace_id = $1 ORDER BY value", ws
    )
    return [r["value"] for r in rows]
