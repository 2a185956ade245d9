"""A user deleted by an operator, as Segment's deletion request would delete it: a `delete`
call judged and stamped by the receiver's own door, written to the call topic."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from ingest.door import Arrival
from ingest.intake import BodyShape, parse_body, prepare
from ops.workspaces import workspace_id
from sextant.calls import Stamp
from sextant.db import connection
from sextant.errors import AdminError
from sextant.kafka import started_producer
from sextant.settings import Settings


async def delete_user(settings: Settings, workspace: str, user_id: str) -> str:
    """Write a delete for `user_id` to the topic; returns its messageId. A worker removes
    the user and everything the receivers accepted for it before now."""
    async with connection(settings) as conn:
        ws = await workspace_id(conn, workspace)
        connector = await conn.fetchval(
            "SELECT id FROM connectors WHERE workspace_id = $1 ORDER BY id LIMIT 1", ws
        )
    if connector is None:
        raise AdminError(f"workspace {workspace!r} has no connector to stamp the delete with")
    now = datetime.now(UTC)
    message = {"type": "delete", "userId": user_id, "messageId": f"operator-delete-{now:%s%f}"}
    intake = prepare(
        parse_body(msgspec.json.encode(message), BodyShape.PARTNER),
        Arrival(received_at=now, correct_clock=False),
        default_type=None,
        stamp=Stamp(ws, connector),
        destination=settings.destination_name,
    )
    [(key, value)] = intake.records
    async with started_producer(settings) as producer:
        await producer.send_and_wait(settings.kafka_topic, value, key=key)
    return message["messageId"]
