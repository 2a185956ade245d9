"""Messages that need no mending, judged in one typed decode.

Most messages arrive as the Spec has them. For those, msgspec checks in C every type and
limit the door would otherwise check member by member in Python (`ingest.door`). A message
that fails any check, or has anything the door would mend, refuse or look at twice (a
blocked identifier, an email-only Engage call, a timestamp that is no timestamp), is not
read here: the door reads it member by member.
Both ways give the same call, byte for byte (`tests/unit/test_as_sent.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final

import msgspec
from msgspec import UNSET, Meta, UnsetType

from ingest.timestamps import parse_timestamp
from sextant.calls import (
    CALL_TYPES,
    MAX_ATTRIBUTE_NAME_LENGTH,
    MAX_ID_LENGTH,
    MAX_MESSAGE_ID_LENGTH,
)
from sextant.identifiers import is_no_identity

TIMESTAMPS: Final = ("timestamp", "originalTimestamp", "sentAt")
# The receiver's own fields: whatever the client put there is not kept.
STAMPS: Final = ("receivedAt", "sextant", "writeKey")
NAMING_KEYS: Final = ("audience_key", "trait_key")  # property values that name an attribute

# Absent is fine; null, an empty id, another type or a longer value is for the door.
_Text = str | UnsetType
_Object = dict[str, Any] | UnsetType
_Id = Annotated[str, Meta(min_length=1, max_length=MAX_ID_LENGTH)] | UnsetType
_Name = Annotated[str, Meta(max_length=MAX_ATTRIBUTE_NAME_LENGTH)]
_Attributes = dict[_Name, Any] | UnsetType


class _Personas(msgspec.Struct):
    computation_class: _Text = UNSET
    computation_key: _Name | UnsetType = UNSET
    computation_id: _Text = UNSET
    space_id: _Text = UNSET


class _Context(msgspec.Struct):
    """The members of `context` the door judges (`ingest.door.JUDGED_CONTEXT`)."""

    ip: _Text = UNSET
    locale: _Text = UNSET
    timezone: _Text = UNSET
    userAgent: _Text = UNSET
    channel: _Text = UNSET
    groupId: _Id = UNSET
    active: bool | UnsetType = UNSET
    personas: _Personas | UnsetType = UNSET
    app: _Object = UNSET
    campaign: _Object = UNSET
    device: _Object = UNSET
    library: _Object = UNSET
    location: _Object = UNSET
    network: _Object = UNSET
    os: _Object = UNSET
    page: _Object = UNSET
    referrer: _Object = UNSET
    screen: _Object = UNSET
    traits: _Object = UNSET
    userAgentData: _Object = UNSET


class _Message(msgspec.Struct):
    """The members the door judges, each as it must be to pass unchanged."""

    type: _Text = UNSET
    userId: _Id = UNSET
    anonymousId: _Id = UNSET
    previousId: _Id = UNSET
    groupId: _Id = UNSET
    event: _Id = UNSET
    messageId: Annotated[str, Meta(min_length=1, max_length=MAX_MESSAGE_ID_LENGTH)] | UnsetType = (
        UNSET
    )
    timestamp: _Text = UNSET
    originalTimestamp: _Text = UNSET
    sentAt: _Text = UNSET
    name: _Text = UNSET
    category: _Text = UNSET
    context: _Context | UnsetType = UNSET
    integrations: _Object = UNSET
    traits: _Attributes = UNSET
    properties: _Attributes = UNSET


_typed = msgspec.json.Decoder(_Message)
_plain = msgspec.json.Decoder()


@dataclass(slots=True)
class AsSent:
    """A message that passes unchanged: the door only stamps it."""

    call_type: str
    identity: str
    message: dict[str, Any]  # decoded, its timestamps read, the client's stamps left out
    moments: dict[str, datetime | None]


def read_as_sent(raw: bytes, default_type: str | None, blocked: frozenset[str]) -> AsSent | None:
    """`raw` read whole when nothing in it needs mending; None when the door must look.

    The caller has checked size and depth, and that the text has nothing the decoder
    mends (NUL, numbers past a double).
    """
    try:
        typed = _typed.decode(raw)
        message: dict[str, Any] = _plain.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    call_type = typed.type or default_type
    identity = typed.userId or typed.anonymousId
    if (
        call_type not in CALL_TYPES
        or not identity
        or _names_a_blocked_id(typed, blocked)
        or not _complete(typed, call_type)
        or not _names_fit(typed.traits)
        or not _names_fit(typed.properties)
        or not _account_fits(typed.traits)
    ):
        return None
    moments: dict[str, datetime | None] = dict.fromkeys(TIMESTAMPS)
    for name in TIMESTAMPS:
        text = getattr(typed, name)
        if text is UNSET:
            continue
        if (moment := parse_timestamp(text)) is None:
            return None  # the door words the warning for a timestamp that is no time
        moments[name] = message[name] = moment  # the record's encoder writes RFC 3339, UTC
    for name in STAMPS:
        message.pop(name, None)
    return AsSent(call_type, identity, message, moments)


def _names_a_blocked_id(typed: _Message, blocked: frozenset[str]) -> bool:
    for value in (typed.userId, typed.anonymousId, typed.previousId):
        if value is not UNSET and is_no_identity(value, blocked):
            return True
    return False


def _complete(typed: _Message, call_type: str) -> bool:
    """What each call type cannot be applied without (the door words the refusal)."""
    match call_type:
        case "track":
            return typed.event is not UNSET
        case "group":
            return typed.groupId is not UNSET
        case "alias":
            return typed.previousId is not UNSET and typed.userId is not UNSET
        case "delete":
            return typed.userId is not UNSET
    return True


def _names_fit(attributes: dict[str, Any] | UnsetType) -> bool:
    """Engage's naming keys name attributes, so they must fit a name."""
    return attributes is UNSET or all(
        _is_name(attributes[name]) for name in NAMING_KEYS if name in attributes
    )


def _account_fits(traits: dict[str, Any] | UnsetType) -> bool:
    """`traits.company`, when an object, is an account: an id and attribute names that fit."""
    company = None if traits is UNSET else traits.get("company")
    if not isinstance(company, dict):
        return True
    account_id = company.get("id", "absent")
    return (
        isinstance(account_id, str)
        and 0 < len(account_id) <= MAX_ID_LENGTH
        and all(len(name) <= MAX_ATTRIBUTE_NAME_LENGTH for name in company)
        and _names_fit(company)
    )


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= MAX_ATTRIBUTE_NAME_LENGTH
