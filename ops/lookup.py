"""One user as a support engineer needs to see it: "why is this user's data missing?"."""

from __future__ import annotations

from typing import Any

from ops.workspaces import workspace_id
from sextant.db import Conn
from sextant.errors import NotFound

RECENT = 50

_PROFILE = """
SELECT * FROM users WHERE workspace_id = $1 AND user_id = $2
"""
_ANONYMOUS_IDS = """
SELECT anonymous_id FROM anonymous_ids WHERE workspace_id = $1 AND user_pk = $2
 ORDER BY anonymous_id
"""
_ACCOUNTS = """
SELECT a.group_id, a.name, m.created_at AS member_since
  FROM account_users m
  JOIN accounts a ON a.workspace_id = m.workspace_id AND a.id = m.account_pk
 WHERE m.workspace_id = $1 AND m.user_pk = $2
 ORDER BY a.group_id
"""
_AUDIENCES = """
SELECT audience_key, computation_class, space_id, updated_at
  FROM audience_memberships
 WHERE workspace_id = $1 AND user_pk = $2 AND member
 ORDER BY audience_key
"""
_EVENTS = f"""
SELECT message_id, name, properties, occurred_at, received_at
  FROM events WHERE workspace_id = $1 AND user_pk = $2
 ORDER BY occurred_at DESC, id DESC LIMIT {RECENT}
"""
_PAGE_VIEWS = f"""
SELECT message_id, kind AS type, name, category, url, path, title, referrer, properties,
       occurred_at, received_at
  FROM page_views WHERE workspace_id = $1 AND user_pk = $2
 ORDER BY occurred_at DESC, id DESC LIMIT {RECENT}
"""
# Bookkeeping of last-writer-wins, not the profile.
_INTERNAL = frozenset({"id", "workspace_id", "field_versions", "touched_version"})


async def user_profile(conn: Conn, workspace: str, user_id: str) -> dict[str, Any]:
    """The user's columns and traits, anonymous ids, accounts, audiences, and the last 50
    events and page views; NotFound when the workspace has no such userId."""
    ws = await workspace_id(conn, workspace)
    user = await conn.fetchrow(_PROFILE, ws, user_id)
    if user is None:
        raise NotFound(f"no user {user_id!r} in {workspace!r}")
    pk = user["id"]

    async def rows(sql: str) -> list[dict[str, Any]]:
        return [dict(r) for r in await conn.fetch(sql, ws, pk)]

    return {
        "profile": {k: v for k, v in dict(user).items() if k not in _INTERNAL},
        "anonymous_ids": [r["anonymous_id"] for r in await rows(_ANONYMOUS_IDS)],
        "accounts": await rows(_ACCOUNTS),
        "audiences": await rows(_AUDIENCES),
        "events": await rows(_EVENTS),
        "page_views": await rows(_PAGE_VIEWS),
    }
