"""Ingestion warnings as operators and customers read them: what was dropped or changed in
calls that were still applied, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ops.pages import EVERYTHING, Order, Page, PageRequest, fetch_page
from ops.workspaces import workspace_id
from sextant.db import Conn
from worker.sql.warnings import RECORDED_PER_MINUTE

_LIST = """
SELECT kind, message_id, user_id, anonymous_id, detail, created_at,
       created_at AS page_time, id AS page_key
  FROM ingestion_warnings
 WHERE workspace_id = $1
   AND ($2::text IS NULL OR kind = $2)
   AND ($3::timestamptz IS NULL OR created_at >= $3)"""

# Warnings counted past the bound of each minute, and so not kept as rows.
_NOT_RECORDED = """
SELECT coalesce(sum(greatest(seen - $4, 0)), 0)
  FROM ingestion_warning_tallies
 WHERE workspace_id = $1
   AND ($2::text IS NULL OR kind = $2)
   AND ($3::timestamptz IS NULL OR minute >= date_trunc('minute', $3::timestamptz))
"""


@dataclass(frozen=True, slots=True)
class RecordedWarning:
    kind: str
    message_id: str | None
    user_id: str | None
    anonymous_id: str | None
    detail: dict[str, Any]
    created_at: datetime


async def list_warnings(
    conn: Conn,
    workspace: str,
    kind: str | None = None,
    since: datetime | None = None,
    page: PageRequest = EVERYTHING,
) -> Page[RecordedWarning]:
    """The newest warnings, a page of them, and (in `extra`) how many more were only counted."""
    ws = await workspace_id(conn, workspace)
    rows, cursor = await fetch_page(
        conn, _LIST, [ws, kind, since], Order("created_at", "id", "bigint"), page
    )
    only_counted = await conn.fetchval(_NOT_RECORDED, ws, kind, since, RECORDED_PER_MINUTE)
    found = [RecordedWarning(*r[:6]) for r in rows]
    return Page(found, cursor, {"only_counted": int(only_counted)})
