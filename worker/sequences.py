"""Ids for new users, taken from their sequence before the rows are written."""

from __future__ import annotations

from collections.abc import Sequence

from sextant.db import Conn
from worker.model import Profile


async def assign_from_sequence(conn: Conn, table: str, rows: Sequence[Profile]) -> None:
    """Give new rows their ids in one round trip, before anything refers to them."""
    if rows:
        ids = await conn.fetch(
            "SELECT nextval(pg_get_serial_sequence($1, 'id')) FROM generate_series(1, $2)",
            table,
            len(rows),
        )
        for row, (pk,) in zip(rows, ids, strict=True):
            row.pk = pk
