"""What arrives over HTTP, and what the receiver writes to Kafka.

The receiver decodes only what it must check (identity, type, required fields,
timestamps, integrations); the rest of each message travels to Kafka as the
client sent it, with Sextant's stamps added.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import msgspec

# Segment's own limits (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/#max-request-size).
MAX_MESSAGE_BYTES: Final = 32 * 1024
MAX_REQUEST_BYTES: Final = 500 * 1024
MAX_BATCH_MESSAGES: Final = 2500

SUPPORTED_TYPES: Final = frozenset(
    {"identify", "track", "page", "screen", "group", "alias", "delete"}
)

# Stamped into every message; the worker trusts only these, never the client's.
STAMP_FIELD: Final = "sextant"


class Stamp(msgspec.Struct, frozen=True, rename="camel"):
    """Who the message belongs to, as authenticated by the receiver."""

    workspace_id: int
    connector_id: int


class BatchBody(msgspec.Struct, frozen=True):
    """`/v1/batch` and `/v1/import`."""

    batch: list[msgspec.Raw]
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    writeKey: str | None = None


class KeyOnly(msgspec.Struct, frozen=True):
    """A single message, read only for a `writeKey` in its body."""

    writeKey: str | None = None


Identifier = str | int


class MessageHead(msgspec.Struct, frozen=True):
    """The fields of one message the receiver validates; everything else passes through."""

    type: str | None = None
    userId: Identifier | None = None
    anonymousId: Identifier | None = None
    previousId: Identifier | None = None
    groupId: Identifier | None = None
    event: str | None = None
    messageId: str | None = None
    timestamp: datetime | None = None
    originalTimestamp: datetime | None = None
    sentAt: datetime | None = None
    integrations: dict[str, Any] | None = None
    # Present only to know whether the fast path may splice stamps in:
    receivedAt: msgspec.Raw | None = None
    writeKey: msgspec.Raw | None = None
    sextant: msgspec.Raw | None = None


def identifier(value: Identifier | None) -> str | None:
    """Segment ids are strings; some libraries send numbers. Empty means absent."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value)
    return text or None
