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
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from ingest.as_sent import NAMING_KEYS, STAMPS, TIMESTAMPS, AsSent, read_as_sent
from ingest.lists import NO_LISTS, WorkspaceLists
from ingest.mending import Mends, decode_object, is_plain
from ingest.timestamps import call_time, format_timestamp, parse_timestamp
from ingest.wire import MAX_MESSAGE_BYTES
from sextant.calls import (
    CALL_TYPES,
    MAX_ATTRIBUTE_NAME_LENGTH,
    MAX_ID_LENGTH,
    MAX_MESSAGE_ID_LENGTH,
    IngestionWarning,
    email_in,
)
from sextant.errors import InvalidRequest, TooLarge, UnsupportedType
from sextant.identifiers import is_no_identity

_IDENTIFIERS: Final = ("userId", "anonymousId", "previousId", "groupId")
_OBJECTS: Final = ("context", "integrations", "traits", "properties")
_SPEC_TEXTS: Final = ("name", "category")  # where the Spec has a string
_CONTEXT_TEXTS: Final = ("ip", "locale", "timezone", "userAgent", "channel")
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
_NOT_AN_IDENTITY: Final = "a value no user can have (sextant identifier list); treated as absent"
# Members of `context` whose type the door checks; the others are kept as they are.
JUDGED_CONTEXT: Final = frozenset({*_CONTEXT_TEXTS, *_CONTEXT_OBJECTS, "active", "groupId"})


@dataclass(frozen=True, slots=True)
class Arrival:
    """What the door knows of a request: when and by which route it arrived, and the
    workspace's own lists."""

    received_at: datetime
    # /v1/* (libraries): correct the device's clock by sentAt; /segment: Segment already did.
    correct_clock: bool = True
    future_tolerance: timedelta = timedelta(seconds=600)
    lists: WorkspaceLists = NO_LISTS


@dataclass(slots=True)
class Admitted:
    """A message the door lets in: its canonical form (without the receiver's stamps)."""

    call_type: str
    identity: str  # its userId, else its anonymousId: the Kafka key after the workspace
    message: dict[str, Any]
    call_time: datetime  # what orders last-writer-wins
    warnings: list[IngestionWarning] = field(default_factory=list)


def admit(
    raw: bytes,
    arrival: Arrival,
    *,
    default_type: str | None,
    batch_context: dict[str, Any] | None = None,
    batch_integrations: dict[str, Any] | None = None,
) -> Admitted:
    """Judge one message; raise InvalidRequest, TooLarge or UnsupportedType with the reason."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise TooLarge(f"message is over {MAX_MESSAGE_BYTES // 1024} KB")
    if batch_context is None and batch_integrations is None and is_plain(raw):
        sent = read_as_sent(raw, default_type, arrival.lists.blocked)
        if sent is not None:
            return _stamped(sent, raw, arrival)
    return admit_member_by_member(
        raw,
        arrival,
        default_type=default_type,
        batch_context=batch_context,
        batch_integrations=batch_integrations,
    )


def _stamped(sent: AsSent, raw: bytes, arrival: Arrival) -> Admitted:
    """A message that needs no mending, with what the door adds to every message."""
    message = sent.message
    if "messageId" not in message:
        message["messageId"] = content_message_id(raw)
    # A call time too far ahead is clamped, with a warning.
    return _admitted(sent.call_type, sent.identity, message, sent.moments, arrival, Mends())


def admit_member_by_member(
    raw: bytes,
    arrival: Arrival,
    *,
    default_type: str | None,
    batch_context: dict[str, Any] | None = None,
    batch_integrations: dict[str, Any] | None = None,
) -> Admitted:
    """The door for any message: each member judged, mended where it can be."""
    mends = Mends()
    message = decode_object(raw, mends, "message")
    _merge_batch_fields(message, batch_context, batch_integrations, mends)
    call_type = _call_type(message, default_type)
    for name in STAMPS:
        message.pop(name, None)
    # Each check below is asked only of the members present: a message has few of them,
    # and on a busy receiver these calls are most of a message's cost.
    blocked = [
        found
        for name in _IDENTIFIERS
        if name in message
        and (found := _identifier(message, name, arrival.lists.blocked, mends)) is not None
    ]
    _message_id(message, raw, mends)
    moments = {
        name: _timestamp(message, name, mends) if name in message else None for name in TIMESTAMPS
    }
    for name in _OBJECTS:
        if name in message:
            _object(message, name, mends)
    for name in _SPEC_TEXTS:
        if name in message:
            _text(message, name, name, mends)
    if isinstance(context := message.get("context"), dict):
        _context(context, mends)
    for name in ("traits", "properties"):
        if isinstance(attributes := message.get(name), dict):
            _attribute_names(attributes, name, mends)
    if isinstance(company := (message.get("traits") or {}).get("company"), dict):
        _group_id(company, "id", "traits.company.id", mends)  # an account's, when present
        _attribute_names(company, "traits.company", mends)
    identity = _required(message, call_type, blocked)
    return _admitted(call_type, identity, message, moments, arrival, mends)


def _admitted(
    call_type: str,
    identity: str,
    message: dict[str, Any],
    moments: dict[str, datetime | None],
    arrival: Arrival,
    mends: Mends,
) -> Admitted:
    """What the door does last to every message it lets in: its type, and its call time."""
    message["type"] = call_type
    when = _call_time(moments, arrival, mends)
    return Admitted(call_type, identity, message, when, mends.warnings)


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


def _identifier(
    message: dict[str, Any], name: str, blocked: frozenset[str], mends: Mends
) -> str | None:
    """Identifiers are text: numbers and booleans become text, anything else is left out.
    A value that is no identity ("null", "0", a workspace's own blocked values) counts as
    absent; returns it, to name it should the message be left with no identity."""
    _text(message, name, name, mends)
    value = message.get(name)
    if not isinstance(value, str):
        return None
    if len(value) > MAX_ID_LENGTH:
        raise InvalidRequest(f"{name} is longer than {MAX_ID_LENGTH} characters")
    if name == "groupId":
        if not value:
            del message[name]
        return None
    if is_no_identity(value, blocked):
        del message[name]
        if value:
            detail = {"field": name, "value": value, "reason": _NOT_AN_IDENTITY}
            mends.warnings.append(IngestionWarning("blocked_identifier", detail))
        return f"{name} {value!r}"
    return None


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


def _timestamp(message: dict[str, Any], name: str, mends: Mends) -> datetime | None:
    value = message.get(name)
    if value is None:
        message.pop(name, None)
        return None
    moment = parse_timestamp(value) if isinstance(value, str) else None
    if moment is None:
        del message[name]
        mends.unparsable(name, value if isinstance(value, str) else json.dumps(value)[:100])
    else:
        message[name] = moment  # the record's encoder writes it in RFC 3339, UTC
    return moment


def _call_time(moments: dict[str, datetime | None], arrival: Arrival, mends: Mends) -> datetime:
    """The call's time: its `timestamp`, else `originalTimestamp`, corrected for the device's
    clock on /v1/*, else when we received it; never later than the receipt plus the
    tolerance (a device clock years ahead would otherwise win every field forever)."""
    original = moments["timestamp"] or moments["originalTimestamp"]
    received = arrival.received_at
    moment = call_time(original, moments["sentAt"], received, correct=arrival.correct_clock)
    if moment - received > arrival.future_tolerance:
        mends.warnings.append(
            IngestionWarning(
                "timestamp_in_future",
                {
                    "call_time": format_timestamp(moment),
                    "received_at": format_timestamp(received),
                    "reason": "later than its receipt by more than "
                    f"{arrival.future_tolerance.total_seconds():g} s; the receipt is used",
                },
            )
        )
        return received
    return moment


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
        if name in context:
            _text(context, name, f"context.{name}", mends)
    if "groupId" in context:
        _group_id(context, "groupId", "context.groupId", mends)
    for name in _CONTEXT_OBJECTS:
        if name in context:
            _object(context, name, mends, "context.")
    if "active" in context and not isinstance(context["active"], bool):
        value = context.pop("active")
        if value is not None:
            mends.dropped("context.active", f"expected a boolean, got {_json_type(value)}")
    if isinstance(personas := context.get("personas"), dict):
        for name in _PERSONAS_TEXTS:
            longest = MAX_ATTRIBUTE_NAME_LENGTH if name == "computation_key" else 0
            _text(personas, name, f"context.personas.{name}", mends, longest)


def _group_id(container: dict[str, Any], name: str, path: str, mends: Mends) -> None:
    """An account's id: text, an identifier's length at the most, else left out."""
    _text(container, name, path, mends, MAX_ID_LENGTH)
    if container.get(name) == "":
        del container[name]


def _attribute_names(attributes: dict[str, Any], where: str, mends: Mends) -> None:
    """Trait and property names become attribute names, which have a length limit; so do
    the audience and trait keys Engage names in properties."""
    for name in [n for n in attributes if len(n) > MAX_ATTRIBUTE_NAME_LENGTH]:
        del attributes[name]
        mends.dropped(f"{where}.{name[:40]}...", f"a name longer than {MAX_ATTRIBUTE_NAME_LENGTH}")
    for name in NAMING_KEYS:
        if name in attributes:
            _text(attributes, name, f"{where}.{name}", mends, MAX_ATTRIBUTE_NAME_LENGTH)


def _required(message: dict[str, Any], call_type: str, blocked: list[str]) -> str:
    """What each call type cannot be applied without; returns the call's identity."""
    user_id, anonymous_id = message.get("userId"), message.get("anonymousId")
    if not user_id and not anonymous_id:
        if (email := _engage_email(message, call_type)) is not None:
            return email
        if blocked:
            raise InvalidRequest(
                f"message has neither userId nor anonymousId: {', '.join(blocked)} "
                f"{'is' if len(blocked) == 1 else 'are'} not an identity"
            )
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


def _engage_email(message: dict[str, Any], call_type: str) -> str | None:
    """The email of an Engage call for an email-only profile (Engage sends one call per
    identifier, and an email is one), which then identifies the call's user."""
    if call_type in ("alias", "delete"):
        return None
    context = message.get("context")
    if not (isinstance(context, dict) and isinstance(context.get("personas"), dict)):
        return None
    return email_in(call_type, message.get("traits"), context)


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
