"""Custom attribute types, as operators declare them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ops.pages import EVERYTHING, Order, Page, PageRequest, fetch_page
from ops.workspaces import workspace_id
from sextant.db import Conn
from sextant.errors import InvalidInput
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
        raise InvalidInput(f"entity must be one of {', '.join(ENTITIES)}, not {entity!r}")
    if attribute_type not in ATTRIBUTE_TYPES:
        raise InvalidInput(
            f"type must be one of {', '.join(ATTRIBUTE_TYPES)}, not {attribute_type!r}"
        )
    if (entity == "event") != bool(event):
        raise InvalidInput("--event NAME goes with --entity event, and only with it")
    await conn.execute(
        _DEFINE, await workspace_id(conn, workspace), entity, event, name, attribute_type
    )


@dataclass(frozen=True, slots=True)
class AttributeDefinition:
    entity: str
    event: str | None
    name: str
    type: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EventDefinition:
    name: str
    first_seen_at: datetime
    last_seen_at: datetime


async def list_attributes(
    conn: Conn, workspace: str, page: PageRequest = EVERYTHING
) -> Page[AttributeDefinition]:
    ws = await workspace_id(conn, workspace)
    rows, cursor = await fetch_page(
        conn,
        """SELECT entity, nullif(event_name, '') AS event, name, type, created_at,
                  created_at AS page_time,
                  entity || '/' || event_name || '/' || name AS page_key
             FROM attribute_definitions WHERE workspace_id = $1""",
        [ws],
        Order("created_at", "entity || '/' || event_name || '/' || name"),
        page,
    )
    return Page([AttributeDefinition(*r[:5]) for r in rows], cursor)


async def list_event_definitions(
    conn: Conn, workspace: str, page: PageRequest = EVERYTHING
) -> Page[EventDefinition]:
    """Event names seen, the most recently seen first."""
    ws = await workspace_id(conn, workspace)
    rows, cursor = await fetch_page(
        conn,
        """SELECT name, first_seen_at, last_seen_at, last_seen_at AS page_time, name AS page_key
             FROM event_definitions WHERE workspace_id = $1""",
        [ws],
        Order("last_seen_at", "name"),
        page,
    )
    return Page([EventDefinition(*r[:3]) for r in rows], cursor)
