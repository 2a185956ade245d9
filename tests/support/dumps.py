"""Whole-workspace dumps, to compare the rows two runs leave."""

from __future__ import annotations

from typing import Any

import asyncpg


async def dump(conn: asyncpg.Connection, ws: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every visible row of the workspace, with surrogate ids replaced by natural keys."""
    label = await conn.fetch(
        """SELECT u.id, coalesce(u.user_id,
                  'anon:' || (SELECT string_agg(a.anonymous_id, ',' ORDER BY a.anonymous_id)
                                FROM anonymous_ids a WHERE a.workspace_id = u.workspace_id
                                 AND a.user_pk = u.id),
                  'email:' || (SELECT string_agg(e.email, ',' ORDER BY e.email)
                                 FROM email_identities e WHERE e.workspace_id = u.workspace_id
                                  AND e.user_pk = u.id),
                  '?') AS label
             FROM users u WHERE u.workspace_id = $1""",
        ws,
    )
    who = {r["id"]: r["label"] for r in label}
    accounts = {
        r["id"]: r["group_id"]
        for r in await conn.fetch("SELECT id, group_id FROM accounts WHERE workspace_id = $1", ws)
    }

    async def rows(sql: str) -> list[tuple[Any, ...]]:
        found = []
        for r in await conn.fetch(sql, ws):
            row = dict(r)
            if "user_pk" in row:
                row["user_pk"] = who[row["user_pk"]]
            if "account_pk" in row:
                row["account_pk"] = accounts.get(row["account_pk"])
            found.append(tuple(sorted((k, repr(v)) for k, v in row.items())))
        return sorted(found)

    return {
        "users": await rows("SELECT * FROM users WHERE workspace_id = $1"),
        "anonymous_ids": await rows("SELECT * FROM anonymous_ids WHERE workspace_id = $1"),
        "email_identities": await rows("SELECT * FROM email_identities WHERE workspace_id = $1"),
        "accounts": await rows("SELECT * FROM accounts WHERE workspace_id = $1"),
        "account_users": await rows("SELECT * FROM account_users WHERE workspace_id = $1"),
        "events": await rows("SELECT * FROM events WHERE workspace_id = $1"),
        "page_views": await rows("SELECT * FROM page_views WHERE workspace_id = $1"),
        "event_definitions": await rows("SELECT * FROM event_definitions WHERE workspace_id = $1"),
        "attribute_definitions": await rows(
            "SELECT entity, event_name, name, type FROM attribute_definitions "
            "WHERE workspace_id = $1"
        ),
        "audience_memberships": await rows(
            "SELECT * FROM audience_memberships WHERE workspace_id = $1"
        ),
        "account_audience_memberships": await rows(
            "SELECT * FROM account_audience_memberships WHERE workspace_id = $1"
        ),
    }


_GENERATED = ("id", "workspace_id", "created_at", "updated_at")


def visible(
    tables: dict[str, list[tuple[Any, ...]]], also_drop: tuple[str, ...] = ()
) -> dict[str, list[tuple[Any, ...]]]:
    """Drop what Postgres or the sequence made up: surrogate ids and now() stamps."""
    dropped = _GENERATED + also_drop
    return {
        name: sorted(tuple(kv for kv in row if kv[0] not in dropped) for row in rows)
        for name, rows in tables.items()
    }
