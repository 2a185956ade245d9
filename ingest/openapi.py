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
    "501": _error("A message type Sextant does not support."),
    "503": {
        **_error("The broker did not acknowledge in time: nothing was accepted; retry."),
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}

_SECURITY: list[dict[str, list[str]]] = [{"basic": []}, {"bearer": []}, {"writeKeyHeader": []}, {}]


def _post(summary: str, schema: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "security": _SECURITY,
            "parameters": [
                {
                    "name": "X-Signature",
                    "in": "header",
                    "required": False,
                    "description": "Hex HMAC-SHA1 of the body as sent (sources with a secret).",
                    "schema": {"type": "string"},
                },
                {
                    "name": "Content-Encoding",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "enum": ["gzip"]},
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
_NAMES = {t: f"{t.capitalize()}Message" for t in _TYPES}
_ID = {"type": ["string", "number", "boolean"], "maxLength": MAX_ID_LENGTH}
_IDENTITIES = {"anyOf": [{"required": ["userId"]}, {"required": ["anonymousId"]}]}
_REQUIRED = {
    "track": {"required": ["event"]},
    "group": {"required": ["groupId"]},
    "alias": {"required": ["previousId", "userId"]},
    "delete": {"required": ["userId"]},
}


def _message_schema(call_type: str) -> dict[str, Any]:
    """One type's message: what it must hold, and the fields the receiver reads."""
    attributes = {"type": "object", "propertyNames": {"maxLength": MAX_ATTRIBUTE_NAME_LENGTH}}
    return {
        "type": "object",
        "maxProperties": 1000,
        "description": f"A {call_type} call, nested no deeper than {MAX_DEPTH} levels.",
        "properties": {
            "type": {"const": call_type},
            "userId": _ID,
            "anonymousId": _ID,
            "messageId": {"type": "string", "maxLength": MAX_MESSAGE_ID_LENGTH},
            "timestamp": {"type": "string", "format": "date-time"},
            "originalTimestamp": {"type": "string"},
            "sentAt": {"type": "string", "format": "date-time"},
            "event": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
            "groupId": _ID,
            "previousId": _ID,
            "name": {"type": "string"},
            "category": {"type": "string"},
            "traits": attributes,
            "properties": attributes,
            "context": {"type": "object"},
            "integrations": {"type": "object"},
            "writeKey": {"type": "string"},
        },
        "allOf": [_IDENTITIES, *([_REQUIRED[call_type]] if call_type in _REQUIRED else [])],
    }


def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {
        f"/v1/{t}": _post(f"One {t} call; `type` defaults to {t!r}.", _NAMES[t])
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
                **{_NAMES[t]: _message_schema(t) for t in _TYPES},
                "Batch": {
                    "type": "object",
                    "required": ["batch"],
                    "properties": {
                        "batch": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/TypedMessage"},
                            "maxItems": MAX_BATCH_MESSAGES,
                        },
                        "context": {"type": "object"},
                        "integrations": {"type": "object"},
                        "writeKey": {"type": "string"},
                    },
                },
                "TypedMessage": {
                    "description": "A message of a batch or delivery, which names its type.",
                    "allOf": [{"$ref": "#/components/schemas/Message"}, {"required": ["type"]}],
                },
                "Delivery": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/TypedMessage"},
                        {"type": "array", "items": {"$ref": "#/components/schemas/TypedMessage"}},
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
