"""SQL for events, page views and event definitions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sextant.db import Conn
from worker.rules.records import Event, PageView

# Rows travel as one JSON document (see users.py for why).
_INSERT_EVENTS = """
INSERT INTO events (workspace_id, message_id, user_pk, account_pk, name, properties,
                    occurred_at, received_at)
SELECT * FROM jsonb_to_recordset($1::jsonb) AS r (
       workspace_id bigint, message_id text, user_pk bigint, account_pk bigint, name text,
       properties jsonb, occurred_at timestamptz, received_at timestamptz)
ON CONFLICT (workspace_id, message_id) DO NOTHING
"""

_INSERT_PAGE_VIEWS = """
INSERT INTO page_views (workspace_id, message_id, user_pk, account_pk, kind, name, category,
                        url, path, title, referrer, properties, occurred_at, received_at)
SELECT * FROM jsonb_to_recordset($1::jsonb) AS r (
       workspace_id bigint, message_id text, user_pk bigint, account_pk bigint, kind text,
       name text, category text, url text, path text, title text, referrer text,
       properties jsonb, occurred_at timestamptz, received_at timestamptz)
ON CONFLICT (workspace_id, message_id) DO NOTHING
"""

_UPSERT_DEFINITIONS = """
INSERT INTO event_definitions AS d (workspace_id, name, first_seen_at, last_seen_at)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::timestamptz[])
ON CONFLICT (workspace_id, name) DO UPDATE SET
    first_seen_at = least(d.first_seen_at, EXCLUDED.first_seen_at),
    last_seen_at = greatest(d.last_seen_at, EXCLUDED.last_seen_at)
"""


async def insert_events(conn: Conn, events: Sequence[Event]) -> None:
    if events:
        await conn.execute(
            _INSERT_EVENTS,
            [
                {
                    "workspace_id": e.workspace_id,
                    "message_id": e.message_id,
                    "user_pk": e.user.final().pk,
                    "account_pk": e.account.pk if e.account else None,
                    "name": e.name,
                    "properties": e.properties,
                    "occurred_at": e.occurred_at,
                    "received_at": e.received_at,
                }
                for e in events
            ],
        )


async def insert_page_views(conn: Conn, views: Sequence[PageView]) -> None:
    if views:
        await conn.execute(
            _INSERT_PAGE_VIEWS,
            [
                {
                    "workspace_id": v.workspace_id,
                    "message_id": v.message_id,
                    "user_pk": v.user.final().pk,
                    "account_pk": v.account.pk if v.account else None,
                    "kind": v.view_type,
                    "name": v.name,
                    "category": v.category,
                    "url": v.url,
                    "path": v.path,
                    "title": v.title,
                    "referrer": v.referrer,
                    "properties": v.properties,
                    "occurred_at": v.occurred_at,
                    "received_at": v.received_at,
                }
                for v in views
            ],
        )


async def save_definitions(
    conn: Conn, seen: dict[tuple[int, str], tuple[datetime, datetime]]
) -> None:
    """Each (workspace, event name) with the first and last time it was seen in the batch."""
    if not seen:
        return
    keys = sorted(seen)  # one order everywhere, so concurrent batches cannot deadlock
    await conn.execute(
        _UPSERT_DEFINITIONS,
        [k[0] for k in keys],
        [k[1] for k in keys],
        [seen[k][0] for k in keys],
        [seen[k][1] for k in keys],
    )
