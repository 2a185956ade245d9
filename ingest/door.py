"""The door: the receiver's judgement of one message, the only one Sextant makes.

A message is decoded once, mended where something sensible can be applied (each mend
recorded as an ingestion warning that travels with the call), and refused, alone, where
nothing can. What comes out is the canonical form of the call model in `sextant.calls`,
checked against that model with the worker's own decoder, so every message the receiver
accepts is one a worker can apply. Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from ingest.scan import nests_deeper_than
from ingest.timestamps import format_timestamp, parse_timestamp
from ingest.wire import MAX_MESSAGE_BYTES
from sextant.calls import (
    CALL_TYPES,
    MAX_ATTRIBUTE_NAME_LENGTH,
    MAX_DEPTH,
    MAX_ID_LENGTH,
    MAX_MESSAGE_ID_LENGTH,
    IngestionWarning,
)
from sextant.errors import InvalidRequest, TooLarge, UnsupportedType

_IDENTIFIERS: Final = ("userId", "anonymousId", "previousId", "groupId")
_OBJECTS: Final = ("context", "integrations", "traits", "properties")
_TIMESTAMPS: Final = ("timestamp", "originalTimestamp", "sentAt")
_SPEC_TEXTS: Final = ("name", "category")  # where the Spec has a string
# The receiver's own fields: whatever the client put there is not kept.
_STAMPS: Final = ("receivedAt", "sextant", "writeKey")
_CONTEXT_TEXTS: Final = ("ip", "locale", "timezone", "userAgent", "groupId", "channel")
_CONTEXT_OBJECTS: Final = (
    "app",
    "campaign",
    "device",
    "library",
    "location",
    "network",
    "os",
    "page",
    "referrer",
    "screen",
    "traits",
    "userAgentData",
    "personas",
)
_PERSONAS_TEXTS: Final = ("computation_class", "computation_key", "computation_id", "space_id")
# Members of `context` whose type the door checks; the others are kept as they are.
JUDGED_CONTEXT: Final = frozenset({*_CONTEXT_TEXTS, *_CONTEXT_OBJECTS, "active"})
_LARGEST_DOUBLE: Final = 1.7976931348623157e308

_decoder = msgspec.json.Decoder()
# Hints that a message needs a walk through all of it; most messages have none.
_NUL: Final = b"\\u0000"
_HUGE_INTEGER = re.compile(rb"\d{309}")
_SURROGATE = re.compile(rb"\\u[dD][89abAB]")


@dataclass(slots=True)
class Admitted:
    """A message the door lets in: its canonical form (without the receiver's stamps)."""

    call_type: str
    identity: str  # its userId, else its anonymousId: the Kafka key after the workspace
    message: dict[str, Any]
    warnings: list[IngestionWarning] = field(default_factory=list)


class Mends:
    """The warnings of one message (or a batch's own fields), written as the door mends it."""

    def __init__(self) -> None:
        self.warnings: list[IngestionWarning] = []

    def dropped(self, path: str, reason: str) -> None:
        self.warnings.append(IngestionWarning("field_dropped", {"field": path, "reason": reason}))

    def coerced(self, path: str, reason: str) -> None:
        self.warnings.append(IngestionWarning("field_coerced", {"field": path, "reason": reason}))

    def unparsable(self, path: str, value: str) -> None:
        detail = {"field": path, "value": value[:100], "reason": "not a timestamp; ignored"}
        self.warnings.append(IngestionWarning("timestamp_unparsable", detail))


def admit(
    raw: bytes,
    *,
    default_type: str | None,
    batch_context: dict[str, Any] | None = None,
    batch_integrations: dict[str, Any] | None = None,
) -> Admitted:
    """Judge one message; raise InvalidRequest, TooLarge or UnsupportedType with the reason."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise TooLarge(f"message is over {MAX_MESSAGE_BYTES // 1024} KB")
    mends = Mends()
    message = decode_object(raw, mends, "message")
    _merge_batch_fields(message, batch_context, batch_integrations, mends)
    call_type = _call_type(message, default_type)
    for name in _STAMPS:
        message.pop(name, None)
    for name in _IDENTIFIERS:
        _identifier(message, name, mends)
    _message_id(message, raw, mends)
    for name in _TIMESTAMPS:
        _timestamp(message, name, mends)
    for name in _OBJECTS:
        _object(message, name, mends)
    for name in _SPEC_TEXTS:
        _text(message, name, name, mends)
    if isinstance(context := message.get("context"), dict):
        _context(context, mends)
    for name in ("traits", "properties"):
        if isinstance(attributes := message.get(name), dict):
            _attribute_names(attributes, name, mends)
    identity = _required(message, call_type)
    message["type"] = call_type
    return Admitted(call_type, identity, message, mends.warnings)


def decode_object(raw: bytes, mends: Mends, what: str, root: str = "") -> dict[str, Any]:
    """`raw` as a JSON object no deeper than the limit, mended: its numbers in a double's
    range and its text free of NUL."""
    if nests_deeper_than(raw, MAX_DEPTH):
        raise InvalidRequest(f"{what} is nested deeper than {MAX_DEPTH} levels")
    out_of_range = False
    try:
        value = _decoder.decode(raw)
    except msgspec.ValidationError:  # a number outside a double's range
        value, out_of_range = _decode_out_of_range(raw, what), True
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as e:
        raise InvalidRequest(_not_json(raw, what, e)) from e
    if not isinstance(value, dict):
        raise InvalidRequest(f"{what} is not a JSON object")
    if out_of_range or _NUL in raw or _HUGE_INTEGER.search(raw):
        return _clean_all(value, mends, root)
    return value


# --- decoding ---------------------------------------------------------------------------

_OUT = object()  # a number outside a double's range, as the lenient decoder marks it


def _decode_out_of_range(raw: bytes, what: str) -> Any:
    """Decode with numbers outside a double's range marked, for the walk to leave out.

    msgspec refuses such numbers outright; the standard library's decoder hands them to
    us. The depth is already known to be small, so its recursion is bounded.
    """

    def number(text: str) -> Any:
        value = float(text)
        return value if math.isfinite(value) else _OUT

    def constant(text: str) -> Any:
        raise ValueError(f"{text} is not JSON")

    try:
        return json.loads(raw, parse_float=number, parse_int=_integer, parse_constant=constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise InvalidRequest(f"{what} is not JSON: {e}") from e


def _integer(text: str) -> Any:
    value = int(text)
    return value if abs(value) <= _LARGEST_DOUBLE else _OUT


def _not_json(raw: bytes, what: str, error: Exception) -> str:
    if isinstance(error, RecursionError):
        return f"{what} is nested deeper than {MAX_DEPTH} levels"
    if isinstance(error, UnicodeDecodeError) or _SURROGATE.search(raw):
        return f"{what} is not valid Unicode text"
    return f"{what} is not JSON: {error}"


def _clean_all(message: dict[str, Any], mends: Mends, root: str) -> dict[str, Any]:
    """Remove NUL from every string and key, and leave out numbers outside a double's
    range, anywhere in the message (at most 32 levels deep, so recursion is bounded)."""
    nul_fields: list[str] = []

    def clean(value: Any, path: str) -> Any:
        if isinstance(value, str):
            if "\x00" in value:
                nul_fields.append(path)
                return value.replace("\x00", "")
            return value
        if value is _OUT or (isinstance(value, int) and not _in_range(value)):
            mends.dropped(path, "a number outside the range of a double")
            return _OUT
        if isinstance(value, dict):
            kept = {}
            for key, item in value.items():
                name = key.replace("\x00", "") if "\x00" in key else key
                inner = f"{path}.{name}" if path else name
                if name != key:
                    nul_fields.append(inner)
                cleaned = clean(item, inner)
                if cleaned is not _OUT:
                    kept[name] = cleaned
            return kept
        if isinstance(value, list):
            items = [clean(item, f"{path}[{i}]") for i, item in enumerate(value)]
            return [item for item in items if item is not _OUT]
        return value

    cleaned: dict[str, Any] = clean(message, root)
    if nul_fields:
        mends.coerced(", ".join(nul_fields[:10]), "NUL characters removed")
    return cleaned


def _in_range(value: int) -> bool:
    return isinstance(value, bool) or abs(value) <= _LARGEST_DOUBLE


# --- one field at a time ----------------------------------------------------------------


def _merge_batch_fields(
    message: dict[str, Any],
    context: dict[str, Any] | None,
    integrations: dict[str, Any] | None,
    mends: Mends,
) -> None:
    """A batch's own `context` and `integrations` go into each message; the message's keys win."""
    for name, outer in (("context", context), ("integrations", integrations)):
        if outer is not None:
            _object(message, name, mends)
            message[name] = {**outer, **message.get(name, {})}


def _call_type(message: dict[str, Any], default_type: str | None) -> str:
    declared = message.get("type")
    call_type = declared if isinstance(declared, str) and declared else default_type
    if call_type is None:
        raise InvalidRequest("message has no type")
    if call_type not in CALL_TYPES:
        raise UnsupportedType(f"type {call_type!r} is not supported")
    return call_type


def _identifier(message: dict[str, Any], name: str, mends: Mends) -> None:
    """Identifiers are text: numbers and booleans become text, anything else is left out."""
    _text(message, name, name, mends)
    value = message.get(name)
    if value == "":
        del message[name]
    elif isinstance(value, str) and len(value) > MAX_ID_LENGTH:
        raise InvalidRequest(f"{name} is longer than {MAX_ID_LENGTH} characters")


def _message_id(message: dict[str, Any], raw: bytes, mends: Mends) -> None:
    """The client's messageId, else one derived from the content, so a retried body keeps it."""
    _text(message, "messageId", "messageId", mends)
    value = message.get("messageId")
    if isinstance(value, str) and len(value) > MAX_MESSAGE_ID_LENGTH:
        raise InvalidRequest(f"messageId is longer than {MAX_MESSAGE_ID_LENGTH} characters")
    if not value:
        message["messageId"] = content_message_id(raw)


def content_message_id(raw: bytes) -> str:
    """A retried body gets the same id, so the worker applies it once."""
    return str(uuid.UUID(bytes=hashlib.sha256(raw).digest()[:16]))


def _timestamp(message: dict[str, Any], name: str, mends: Mends) -> None:
    value = message.get(name)
    if value is None:
        message.pop(name, None)
        return
    moment = parse_timestamp(value) if isinstance(value, str) else None
    if moment is None:
        del message[name]
        mends.unparsable(name, value if isinstance(value, str) else json.dumps(value)[:100])
    else:
        message[name] = format_timestamp(moment)


def _object(container: dict[str, Any], name: str, mends: Mends, path: str = "") -> None:
    """An object member: `null` or `[]` count as absent; another type is left out."""
    value = container.get(name)
    if isinstance(value, dict):
        return
    if name in container:
        del container[name]
        if value is not None and value != []:
            mends.dropped(f"{path}{name}", f"expected an object, got {_json_type(value)}")


def _text(container: dict[str, Any], name: str, path: str, mends: Mends, longest: int = 0) -> None:
    """A member the Spec has as a string: numbers and booleans become strings; other values,
    and strings longer than `longest` (when given), are left out."""
    value = container.get(name)
    if value is None:
        container.pop(name, None)
        return
    if isinstance(value, str):
        if longest and len(value) > longest:
            del container[name]
            mends.dropped(path, f"longer than {longest} characters")
        return
    if isinstance(value, bool | int | float):
        container[name] = json.dumps(value)
        mends.coerced(path, f"{_json_type(value)} made text")
        return
    del container[name]
    mends.dropped(path, f"expected a string, got {_json_type(value)}")


def _context(context: dict[str, Any], mends: Mends) -> None:
    for name in _CONTEXT_TEXTS:
        _text(context, name, f"context.{name}", mends)
    for name in _CONTEXT_OBJECTS:
        _object(context, name, mends, "context.")
    if "active" in context and not isinstance(context["active"], bool):
        value = context.pop("active")
        if value is not None:
            mends.dropped("context.active", f"expected a boolean, got {_json_type(value)}")
    if isinstance(personas := context.get("personas"), dict):
        for name in _PERSONAS_TEXTS:
            longest = MAX_ATTRIBUTE_NAME_LENGTH if name == "computation_key" else 0
            _text(personas, name, f"context.personas.{name}", mends, longest)


def _attribute_names(attributes: dict[str, Any], where: str, mends: Mends) -> None:
    """Trait and property names become attribute names, which have a length limit."""
    for name in [n for n in attributes if len(n) > MAX_ATTRIBUTE_NAME_LENGTH]:
        del attributes[name]
        mends.dropped(f"{where}.{name[:40]}...", f"a name longer than {MAX_ATTRIBUTE_NAME_LENGTH}")


def _required(message: dict[str, Any], call_type: str) -> str:
    """What each call type cannot be applied without; returns the call's identity."""
    user_id, anonymous_id = message.get("userId"), message.get("anonymousId")
    if not user_id and not anonymous_id:
        raise InvalidRequest("message has neither userId nor anonymousId")
    if call_type == "track":
        event = message.get("event")
        if not isinstance(event, str) or not event:
            raise InvalidRequest("track has no event (a non-empty string)")
        if len(event) > MAX_ID_LENGTH:
            raise InvalidRequest(f"event is longer than {MAX_ID_LENGTH} characters")
    if call_type == "group" and not message.get("groupId"):
        raise InvalidRequest("group has no groupId")
    if call_type == "alias" and not (message.get("previousId") and user_id):
        raise InvalidRequest("alias needs previousId and userId")
    if call_type == "delete" and not user_id:
        raise InvalidRequest("delete has no userId")
    return str(user_id or anonymous_id)


def _json_type(value: Any) -> str:
    match value:
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "an array"
        case dict():
            return "an object"
        case _:
            return "null"
