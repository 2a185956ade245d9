"""The OpenAPI document served at /openapi.json."""

from __future__ import annotations

from typing import Any

from ingest.wire import MAX_BATCH_MESSAGES, MAX_MESSAGE_BYTES, MAX_REQUEST_BYTES
from sextant.calls import (
    CALL_TYPES,
    MAX_ATTRIBUTE_NAME_LENGTH,
    MAX_DEPTH,
    MAX_ID_LENGTH,
    MAX_MESSAGE_ID_LENGTH,
)


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


_RESPONSES: dict[str, Any] = {
    "200": {
        "description": "Every accepted call is acknowledged by the broker.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
    },
    "400": _error("Not JSON, not a message or batch, or every message invalid."),
    "401": _error("No API key, or an unknown one."),
    "403": _error("A revoked key, an untrusted Origin or a bad X-Signature."),
    "405": {
        **_error("A method the route does not take."),
        "headers": {
            "Allow": {"schema": {"type": "string"}, "description": "The methods it takes."}
        },
    },
    "413": _error(
        f"Over the size or count limits: {MAX_MESSAGE_BYTES // 1024} KB a message, "
        f"{MAX_REQUEST_BYTES // 1024} KB a request after decompression, "
        f"{MAX_BATCH_MESSAGES} messages a batch."
    ),
    "429": {
        **_error(
            "The workspace is over its intake rate: nothing of the request was forwarded; "
            "retry after the seconds given."
        ),
        "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
    },
    "501": _error("A message type Sextant does not support."),
    "503": {
        **_error("The broker did not acknowledge in time: nothing was accepted; retry."),
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}

_SECURITY: list[dict[str, list[str]]] = [{"basic": []}, {"bearer": []}, {"writeKeyHeader": []}, {}]


_BODY_NOTE = (
    " The body may be sent gzip-compressed with `Content-Encoding: gzip`. Messages nested "
    f"deeper than {MAX_DEPTH} levels, over {MAX_MESSAGE_BYTES // 1024} KB, or with text that "
    "is not valid Unicode are refused."
)


def _post(summary: str, schema: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "description": summary + _BODY_NOTE,
            "security": _SECURITY,
            "parameters": [
                {
                    "name": "X-Signature",
                    "in": "header",
                    "required": False,
                    "description": "Hex HMAC-SHA1 of the body as sent (sources with a secret).",
                    "schema": {"type": "string"},
                },
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}
                },
            },
            "responses": _RESPONSES,
        }
    }


def _probe(summary: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "responses": {"200": {"description": "OK"}, "503": {"description": "Not ready"}},
        }
    }


_TYPES = sorted(CALL_TYPES)
_NAMES = {t: f"{t.capitalize()}Message" for t in _TYPES}  # in a batch: names its type
_ROUTE_NAMES = {t: f"{t.capitalize()}Call" for t in _TYPES}  # /v1/<type>: the route's type
_SCALAR = ["string", "number", "boolean"]
# An identity the door keeps: text (with more than NUL in it: NUL is removed), or a number
# or boolean that it makes text.
_ID = {"type": _SCALAR, "minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": "[^\\u0000]"}
_IDENTITIES = {
    "anyOf": [
        {"required": ["userId"], "properties": {"userId": _ID}},
        {"required": ["anonymousId"], "properties": {"anonymousId": _ID}},
    ]
}
_REQUIRED = {
    "track": {
        "required": ["event"],
        "properties": {"event": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}},
    },
    "group": {"required": ["groupId"], "properties": {"groupId": _ID}},
    "alias": {
        "required": ["previousId", "userId"],
        "properties": {"previousId": _ID, "userId": _ID},
    },
    "delete": {"required": ["userId"], "properties": {"userId": _ID}},
}


def _lenient(description: str, **keywords: Any) -> dict[str, Any]:
    """A field the door mends rather than refuses: any JSON, as the description says."""
    return {"description": description, **keywords}


def _message_schema(call_type: str, typed: bool) -> dict[str, Any]:
    """One type's message: what it must hold, and how the door reads each field. The door
    is lenient: a field of another type is left out or made text, and recorded as an
    ingestion warning, so most fields accept any JSON value. A message in a batch names
    its type (`typed`); one sent to /v1/<type> takes the route's when it names none."""
    text = "Text; numbers and booleans are made text, other values left out."
    identifier = text + f" Text longer than {MAX_ID_LENGTH} characters is refused."
    when = "ISO 8601 (with or without a zone) or Go's time.Time text; any other value is ignored."
    container = (
        "An object; null or [] count as absent, another value is left out. Keys longer than "
        f"{MAX_ATTRIBUTE_NAME_LENGTH} characters are left out."
    )
    return {
        "type": "object",
        "description": f"A {call_type} call.",
        "properties": {
            "type": {"const": call_type}
            if typed
            else _lenient(f"{call_type!r} (the route's) when absent or not text."),
            "userId": _lenient(identifier, maxLength=MAX_ID_LENGTH),
            "anonymousId": _lenient(identifier, maxLength=MAX_ID_LENGTH),
            "groupId": _lenient(identifier, maxLength=MAX_ID_LENGTH),
            "previousId": _lenient(identifier, maxLength=MAX_ID_LENGTH),
            "messageId": _lenient(
                f"Text of at most {MAX_MESSAGE_ID_LENGTH} characters; one is derived from "
                "the content when absent.",
                maxLength=MAX_MESSAGE_ID_LENGTH,
            ),
            "timestamp": _lenient(when),
            "originalTimestamp": _lenient(when),
            "sentAt": _lenient(when),
            "event": _lenient("The event's name (track)."),
            "name": _lenient(text),
            "category": _lenient(text),
            "traits": _lenient(container),
            "properties": _lenient(container),
            "context": _lenient(container),
            "integrations": _lenient(container),
            "writeKey": _lenient(
                "The API key, when no header carries one (a single message, or a batch's own "
                "`writeKey`); a value that is not text is no key. Never forwarded."
            ),
        },
        "required": ["type"] if typed else [],
        "allOf": [_IDENTITIES, *([_REQUIRED[call_type]] if call_type in _REQUIRED else [])],
    }


def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {
        f"/v1/{t}": _post(f"One {t} call; `type` defaults to {t!r}.", _ROUTE_NAMES[t])
        for t in ("identify", "track", "page", "screen", "group", "alias")
    }
    paths["/v1/batch"] = _post("Up to 2,500 calls of any type.", "Batch")
    paths["/v1/import"] = _post("The same as /v1/batch.", "Batch")
    paths["/segment"] = _post("Segment's partner delivery: one call or an array.", "Delivery")
    paths["/healthz"] = _probe("Liveness.")
    paths["/readyz"] = _probe("Readiness: broker reachable and keys loaded.")
    paths["/metrics"] = {
        "get": {"summary": "Prometheus metrics.", "responses": {"200": {"description": "OK"}}}
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Sextant receiver",
            "version": "1",
            "description": (
                f"Segment-compatible intake. Limits: {MAX_MESSAGE_BYTES // 1024} KB per message, "
                f"{MAX_REQUEST_BYTES // 1024} KB per request after decompression, "
                f"{MAX_BATCH_MESSAGES} messages per batch."
            ),
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic", "description": "base64(key + ':')"},
                "bearer": {"type": "http", "scheme": "bearer"},
                "writeKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Write-Key"},
            },
            "schemas": {
                "Message": {
                    "description": (
                        "One Segment call. Required per type: an identity (userId or "
                        "anonymousId) always; `event` for track; `groupId` for group; "
                        "`previousId` and `userId` for alias; `userId` for delete. Fields of "
                        "the wrong type are left out or made text, and recorded as ingestion "
                        "warnings; unknown fields are kept."
                    ),
                    "oneOf": [{"$ref": f"#/components/schemas/{_NAMES[t]}"} for t in _TYPES],
                },
                **{_NAMES[t]: _message_schema(t, typed=True) for t in _TYPES},
                **{_ROUTE_NAMES[t]: _message_schema(t, typed=False) for t in _TYPES},
                "Batch": {
                    "type": "object",
                    "required": ["batch"],
                    "properties": {
                        "batch": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Message"},
                            "maxItems": MAX_BATCH_MESSAGES,
                        },
                        "context": {"type": ["object", "null"]},
                        "integrations": {"type": ["object", "null"]},
                        "writeKey": _lenient("The API key when no header carries one; text."),
                    },
                },
                "Delivery": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/Message"},
                        {"type": "array", "items": {"$ref": "#/components/schemas/Message"}},
                    ]
                },
                "Accepted": {
                    "type": "object",
                    "properties": {
                        "success": {"type": "boolean"},
                        "accepted": {"type": "integer"},
                        "skipped": {"type": "integer"},
                        "rejected": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "index": {"type": "integer"},
                                    "message": {"type": "string"},
                                },
                            },
                        },
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["message"],
                    "properties": {"message": {"type": "string"}, "success": {"type": "boolean"}},
                },
            },
        },
    }
