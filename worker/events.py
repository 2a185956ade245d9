"""SQL for events, page views and event definitions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sextant.db import Conn
from worker.model import User

_INSERT_EVENTS = """
INSERT INTO events (workspace_id, message_id, user_pk, name, properties, occurred_at, received_at)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::jsonb[],
                     $6::timestamptz[], $7::timestamptz[])
ON CONFLICT (workspace_id, message_id) DO NOTHING
"""

_INSERT_PAGE_VIEWS = """
INSERT INTO page_views (workspace_id, message_id, user_pk, kind, name, category, url, path,
                        title, referrer, properties, occurred_at, received_at)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::text[], $10::text[], $11::jsonb[],
                     $12::timestamptz[], $13::timestamptz[])
ON CONFLICT (workspace_id, message_id) DO NOTHING
"""

_UPSERT_DEFINITIONS = """
INSERT INTO event_definitions AS d (workspace_id, name, first_seen_at, last_seen_at)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::timestamptz[])
ON CONFLICT (workspace_id, name) DO UPDATE SET
    first_seen_at = least(d.first_seen_at, EXCLUDED.first_seen_at),
    last_seen_at = greatest(d.last_seen_at, EXCLUDED.last_seen_at)
"""


@dataclass(frozen=True, slots=True)
class Event:
    workspace_id: int
    message_id: str
    version: str
    user: User
    name: str
    properties: dict[str, Any]
    occurred_at: datetime
    received_at: datetime


@dataclass(frozen=True, slots=True)
class PageView:
    workspace_id: int
    message_id: str
    version: str
    user: User
    kind: str
    name: str | None
    category: str | None
    url: str | None
    path: str | None
    title: str | None
    referrer: str | None
    properties: dict[str, Any]
    occurred_at: datetime
    received_at: datetime


async def insert_events(conn: Conn, events: Sequence[Event]) -> None:
    if not events:
        return
    await conn.execute(
        _INSERT_EVENTS,
        [e.workspace_id for e in events],
        [e.message_id for e in events],
        [e.user.final().pk for e in events],
        [e.name for e in events],
        [e.properties for e in events],
        [e.occurred_at for e in events],
        [e.received_at for e in events],
    )


async def insert_page_views(conn: Conn, views: Sequence[PageView]) -> None:
    if not views:
        return
    await conn.execute(
        _INSERT_PAGE_VIEWS,
        [v.workspace_id for v in views],
        [v.message_id for v in views],
        [v.user.final().pk for v in views],
        [v.kind for v in views],
        [v.name for v in views],
        [v.category for v in views],
        [v.url for v in views],
        [v.path for v in views],
        [v.title for v in views],
        [v.referrer for v in views],
        [v.properties for v in views],
        [v.occurred_at for v in views],
        [v.received_at for v in views],
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
