"""SQL for ingestion warnings: recorded with the batch whose calls caused them, at most
`RECORDED_PER_MINUTE` rows per workspace, kind and minute of receipt, across all workers;
the rest only counted."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from sextant.db import Conn

RECORDED_PER_MINUTE: Final = 100

# One statement: count each (workspace, kind, minute) in its tally, which its row lock
# makes exact across workers, then insert only the warnings that still fit under the
# bound. Tallies are taken in one order, so concurrent batches wait instead of deadlocking.
_RECORD = """
WITH given AS (
    SELECT r.*, row_number() OVER (PARTITION BY r.workspace_id, r.kind, r.minute
                                   ORDER BY r.ord) AS nth
      FROM jsonb_to_recordset($1::jsonb) AS r (
           ord int, workspace_id bigint, kind text, minute timestamptz, message_id text,
           user_id text, anonymous_id text, detail jsonb)
), wanted AS (
    SELECT workspace_id, kind, minute, count(*) AS n FROM given GROUP BY 1, 2, 3
), tallied AS (
    INSERT INTO ingestion_warning_tallies AS t (workspace_id, kind, minute, seen)
    SELECT workspace_id, kind, minute, n FROM wanted ORDER BY workspace_id, kind, minute
    ON CONFLICT (workspace_id, kind, minute) DO UPDATE SET seen = t.seen + EXCLUDED.seen
    RETURNING workspace_id, kind, minute, seen
)
INSERT INTO ingestion_warnings (workspace_id, kind, message_id, user_id, anonymous_id, detail)
SELECT g.workspace_id, g.kind, g.message_id, g.user_id, g.anonymous_id, g.detail
  FROM given g
  JOIN wanted w USING (workspace_id, kind, minute)
  JOIN tallied t USING (workspace_id, kind, minute)
 WHERE g.nth <= $2 - (t.seen - w.n)
 ORDER BY g.ord
"""

_PRUNE = [
    """DELETE FROM ingestion_warnings WHERE (workspace_id, id) IN (
           SELECT workspace_id, id FROM ingestion_warnings
            WHERE created_at < now() - make_interval(days => $1) LIMIT $2)""",
    """DELETE FROM ingestion_warning_tallies WHERE (workspace_id, kind, minute) IN (
           SELECT workspace_id, kind, minute FROM ingestion_warning_tallies
            WHERE minute < now() - make_interval(days => $1) LIMIT $2)""",
]


async def record(conn: Conn, warnings: Sequence[dict[str, Any]]) -> None:
    """Each warning: workspace_id, kind, minute (of receipt), message_id, user_id,
    anonymous_id, detail."""
    if warnings:
        rows = [{**w, "ord": i} for i, w in enumerate(warnings)]
        await conn.execute(_RECORD, rows, RECORDED_PER_MINUTE)


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


async def prune(conn: Conn, keep_days: int, limit: int) -> int:
    """Forget up to `limit` warnings and tallies older than `keep_days`; returns how many."""
    total = 0
    for statement in _PRUNE:
        status = await conn.execute(statement, keep_days, limit)
        total += int(status.split()[-1])
    return total


_KINDS_OF = """
SELECT message_id, kind FROM ingestion_warnings
 WHERE workspace_id = $1 AND message_id = ANY($2::text[])
"""


async def kinds_recorded(
    conn: Conn, workspace_id: int, message_ids: Sequence[str]
) -> set[tuple[str, str]]:
    """(messageId, kind) of the warnings already recorded for these calls."""
    rows = await conn.fetch(_KINDS_OF, workspace_id, list(message_ids))
    return {(r["message_id"], r["kind"]) for r in rows}
