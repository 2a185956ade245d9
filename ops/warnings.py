"""Ingestion warnings as operators and customers read them: what was dropped or changed in
calls that were still applied, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ops.workspaces import workspace_id
from sextant.db import Conn
from worker.sql.warnings import RECORDED_PER_MINUTE

_LIST = """
SELECT kind, message_id, user_id, anonymous_id, detail, created_at
  FROM ingestion_warnings
 WHERE workspace_id = $1
   AND ($2::text IS NULL OR kind = $2)
   AND ($3::timestamptz IS NULL OR created_at >= $3)
 ORDER BY created_at DESC, id DESC
 LIMIT $4
"""

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
    limit: int = 100,
) -> tuple[list[RecordedWarning], int]:
    """The newest warnings (at most `limit`), and how many more were only counted."""
    ws = await workspace_id(conn, workspace)
    rows = await conn.fetch(_LIST, ws, kind, since, limit)
    only_counted = await conn.fetchval(_NOT_RECORDED, ws, kind, since, RECORDED_PER_MINUTE)
    return [RecordedWarning(**dict(r)) for r in rows], int(only_counted)
