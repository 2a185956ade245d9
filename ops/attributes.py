"""Custom attribute types, as operators declare them."""

from __future__ import annotations

from ops.workspaces import workspace_id
from sextant.db import Conn
from sextant.errors import AdminError
from worker.rules.attributes import ATTRIBUTE_TYPES as ATTRIBUTE_TYPES
from worker.rules.attributes import ENTITIES as ENTITIES

_DEFINE = """
INSERT INTO attribute_definitions (workspace_id, entity, event_name, name, type)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (workspace_id, entity, event_name, name) DO UPDATE SET type = EXCLUDED.type
"""


async def define(
    conn: Conn, workspace: str, entity: str, event: str, name: str, attribute_type: str
) -> None:
    """Declare an attribute's type; it replaces whatever type the name had. Event
    properties are declared per event name (`event`), and only they are."""
    if entity not in ENTITIES:
        raise AdminError(f"entity must be one of {', '.join(ENTITIES)}, not {entity!r}")
    if attribute_type not in ATTRIBUTE_TYPES:
        raise AdminError(
            f"type must be one of {', '.join(ATTRIBUTE_TYPES)}, not {attribute_type!r}"
        )
    if (entity == "event") != bool(event):
        raise AdminError("--event NAME goes with --entity event, and only with it")
    await conn.execute(
        _DEFINE, await workspace_id(conn, workspace), entity, event, name, attribute_type
    )
