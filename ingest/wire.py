"""What arrives over HTTP: the request bodies, split into their messages without decoding
those; `ingest.door` judges each message."""

from __future__ import annotations

from typing import Any, Final

import msgspec

# Segment's own limits (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/#max-request-size).
MAX_MESSAGE_BYTES: Final = 32 * 1024
MAX_REQUEST_BYTES: Final = 500 * 1024
MAX_BATCH_MESSAGES: Final = 2500


class BatchBody(msgspec.Struct, frozen=True):
    """`/v1/batch` and `/v1/import`: the messages and what the batch says for all of them."""

    batch: list[msgspec.Raw]
    # Read whole, and judged as each message's own are (`ingest.door.decode_object`).
    context: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))
    integrations: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))
    writeKey: Any = None  # a key only when it is text

    @property
    def write_key(self) -> str | None:
        return self.writeKey if isinstance(self.writeKey, str) else None


class KeyOnly(msgspec.Struct, frozen=True):
    """A single message, read only for a `writeKey` in its body."""

    writeKey: Any = None  # a key only when it is text

    @property
    def write_key(self) -> str | None:
        return self.writeKey if isinstance(self.writeKey, str) else None
