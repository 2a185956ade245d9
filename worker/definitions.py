"""SQL for attribute definitions: the declared type of each custom trait and property."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from sextant.db import Conn
from worker.columnar import columnar
from worker.traits import AttributeType

# (workspace, entity, event name or '') -> {attribute name: type}
Scope = tuple[int, str, str]
Definitions = dict[Scope, dict[str, AttributeType]]

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

_DEFINE = """
INSERT INTO attribute_definitions (workspace_id, entity, event_name, name, type)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (workspace_id, entity, event_name, name) DO UPDATE SET type = EXCLUDED.type
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


async def define(
    conn: Conn,
    workspace_id: int,
    entity: str,
    event_name: str,
    name: str,
    kind: AttributeType,
) -> None:
    """An operator's declaration: it replaces whatever type the name had."""
    await conn.execute(_DEFINE, workspace_id, entity, event_name, name, kind)
