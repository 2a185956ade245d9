"""SQL for attribute definitions: the declared type of each custom trait and property."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from sextant.db import Conn
from worker.rules.attributes import AttributeType, Definitions, Scope
from worker.sql.arrays import columnar

_LOAD = """
SELECT d.workspace_id, d.entity, d.event_name, d.name, d.type
  FROM attribute_definitions d
  JOIN unnest($1::bigint[], $2::text[], $3::text[]) AS k (w, entity, event_name)
    ON d.workspace_id = k.w AND d.entity = k.entity AND d.event_name = k.event_name
"""

_ADD = """
INSERT INTO attribute_definitions (workspace_id, entity, event_name, name, type)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])
ON CONFLICT DO NOTHING
"""


async def load(conn: Conn, scopes: Iterable[Scope]) -> Definitions:
    found: Definitions = {}
    rows = await conn.fetch(_LOAD, *columnar(set(scopes), 3))
    for r in rows:
        scope = (r["workspace_id"], r["entity"], r["event_name"])
        found.setdefault(scope, {})[r["name"]] = cast(AttributeType, r["type"])
    return found


async def add(conn: Conn, new: dict[tuple[int, str, str, str], AttributeType]) -> None:
    """Definitions first seen in this batch; one defined meanwhile by someone else stands."""
    if new:
        keys = sorted(new)
        await conn.execute(_ADD, *columnar(keys, 4), [new[k] for k in keys])
