"""What arrives over HTTP: request bodies, and the head of each message.

The receiver decodes only what it must check (identity, type, required fields,
timestamps, integrations); the rest of each message travels to Kafka as the
client sent it, with Sextant's stamps added (`sextant.calls`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import msgspec
from msgspec import UNSET, UnsetType

# Segment's own limits (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/#max-request-size).
MAX_MESSAGE_BYTES: Final = 32 * 1024
MAX_REQUEST_BYTES: Final = 500 * 1024
MAX_BATCH_MESSAGES: Final = 2500


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
    """The fields of one message the receiver validates; everything else passes through.

    UNSET means the key is absent, which differs from null: a key present in any form
    would be a duplicate next to a spliced-in stamp, and JSON decoders keep the last one.
    """

    type: str | UnsetType | None = UNSET
    userId: Identifier | None = None
    anonymousId: Identifier | None = None
    previousId: Identifier | None = None
    groupId: Identifier | None = None
    event: str | None = None
    messageId: str | UnsetType | None = UNSET
    timestamp: datetime | None = None
    originalTimestamp: datetime | None = None
    sentAt: datetime | None = None
    integrations: dict[str, Any] | None = None
    # Present only to know whether the fast path may splice stamps in:
    receivedAt: msgspec.Raw | UnsetType = UNSET
    writeKey: msgspec.Raw | UnsetType = UNSET
    sextant: msgspec.Raw | UnsetType = UNSET

    @property
    def declared_type(self) -> str | None:
        """The message's own `type`, if it names one."""
        return self.type if isinstance(self.type, str) and self.type else None

    @property
    def message_id(self) -> str | None:
        """The client's `messageId`, if it gave a usable one."""
        return self.messageId if isinstance(self.messageId, str) and self.messageId else None


class BatchHeads(msgspec.Struct, frozen=True):
    """`/v1/batch` read for the heads of its messages only."""

    batch: list[MessageHead]
