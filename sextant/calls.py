"""The one model of a Segment call, shared by both processes.

The receiver (`ingest.door`) turns each message it accepts into this model's canonical
form and checks it against this model before it answers; the worker decodes the same
bytes with the same model. The model carries the limits that keep a call applicable
(identifier lengths, attribute name lengths), so a record that did not pass the
receiver's door cannot slip past the worker's decoder either: it goes to the DLQ.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Generic, TypeVar, overload

import msgspec

CALL_TYPES: Final = frozenset({"identify", "track", "page", "screen", "group", "alias", "delete"})

# Stamped into every message by the receiver; the worker trusts only these, never the client's.
STAMP_FIELD: Final = "sextant"

# The limits of an applicable call. Identifiers and names are kept in unique indexes,
# whose rows must stay under Postgres's 2,704 bytes (4 bytes a character at the most).
MAX_DEPTH: Final = 32  # the message object is level 1
MAX_ID_LENGTH: Final = 500  # userId, anonymousId, previousId, groupId, event
MAX_MESSAGE_ID_LENGTH: Final = 250
MAX_ATTRIBUTE_NAME_LENGTH: Final = 255  # trait and property keys

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
MessageId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_MESSAGE_ID_LENGTH)]
AttributeName = Annotated[str, msgspec.Meta(max_length=MAX_ATTRIBUTE_NAME_LENGTH)]
Attributes = dict[AttributeName, Any]

# (workspace, "user_id", "anonymous_id" or "email", the id)
IdentityKey = tuple[int, str, str]


class IngestionWarning(msgspec.Struct, frozen=True):
    """Something dropped or changed in a call that was still applied: `kind` names the rule
    (field_dropped, field_coerced, timestamp_unparsable, ...), `detail` says what and why."""

    kind: str
    detail: dict[str, Any]


class Stamp(msgspec.Struct, frozen=True, rename="camel", omit_defaults=True):
    """Who the message belongs to, as authenticated by the receiver, and what the receiver
    mended in it."""

    workspace_id: int
    connector_id: int
    # When the call happened, as the receiver decided it (clock corrected, future clamped).
    call_time: datetime | None = None
    warnings: list[IngestionWarning] = msgspec.field(default_factory=list)


def identifier(value: str | int | None) -> str | None:
    """Segment ids are strings; some libraries send numbers. Empty means absent."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value)
    return text or None


def email_of(value: Any) -> str | None:
    """An email as an identity: trimmed and in lower case; None unless it looks like one."""
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    return email if len(email) <= MAX_ID_LENGTH and "@" in email[1:-1] else None


def email_in(call_type: str, traits: Any, context: Any) -> str | None:
    """The email a call gives its user: an identify's `traits.email`, else
    `context.traits.email` (where Engage puts it on other calls; a group's own traits are
    its account's)."""
    context_traits = context.get("traits") if isinstance(context, dict) else None
    for holder in (traits if call_type == "identify" else None, context_traits):
        if isinstance(holder, dict) and (email := email_of(holder.get("email"))) is not None:
            return email
    return None


_C = TypeVar("_C")
_V = TypeVar("_V")


class _once(Generic[_C, _V]):
    """`functools.cached_property` without its lock: before Python 3.12 it takes one on
    every first access, which cost more than the values below take to compute."""

    def __init__(self, compute: Callable[[_C], _V]) -> None:
        self._compute = compute
        self._name = compute.__name__

    @overload
    def __get__(self, call: None, owner: type[_C]) -> _once[_C, _V]: ...
    @overload
    def __get__(self, call: _C, owner: type[_C]) -> _V: ...
    def __get__(self, call: _C | None, owner: type[_C]) -> _once[_C, _V] | _V:
        if call is None:
            return self
        value = call.__dict__[self._name] = self._compute(call)
        return value


class Personas(msgspec.Struct, frozen=True):
    """`context.personas`, set by Segment Engage on audience and computed-trait calls."""

    computation_class: str | None = None
    computation_key: AttributeName | None = None
    computation_id: str | None = None
    space_id: str | None = None


class Context(msgspec.Struct, frozen=True):
    """Typed loosely: libraries disagree on shapes here, and an odd shape is no reason to
    dead-letter a call. `worker.rules.mapping` uses what has the expected shape."""

    userAgent: Any = None
    ip: Any = None
    locale: Any = None
    timezone: Any = None
    os: Any = None
    device: Any = None
    screen: Any = None
    page: Any = None
    personas: Personas | None = None
    active: bool | None = None  # false: not the user's own doing (a server-side call)
    groupId: Id | None = None  # the account the call belongs to (Segment's B2B spec)
    traits: Any = None  # the user's traits on calls other than identify (Engage's email)


class Call(msgspec.Struct, frozen=True, tag_field="type", dict=True, kw_only=True):
    """What every call has: identity, time, context, and the receiver's stamps.

    (`dict=True` lets the derived values below be computed once per call.)
    """

    messageId: MessageId
    receivedAt: datetime
    sextant: Stamp
    # The receiver writes identifiers as text; numbers are read too, as older records hold.
    userId: Id | int | None = None
    anonymousId: Id | int | None = None
    timestamp: datetime | None = None
    originalTimestamp: datetime | None = None
    context: Context | None = None

    @_once
    def user_id(self) -> str | None:
        return identifier(self.userId)

    @_once
    def anonymous_id(self) -> str | None:
        return identifier(self.anonymousId)

    @_once
    def workspace_id(self) -> int:
        return self.sextant.workspace_id

    @_once
    def occurred_at(self) -> datetime:
        """The call time the receiver stamped; for a record from before it did, Segment's
        rule: `timestamp`, else `originalTimestamp`, else when it was received."""
        moment = self.sextant.call_time or self.timestamp or self.originalTimestamp
        return _utc(moment or self.receivedAt)

    @_once
    def version(self) -> str:
        """Sortable as text: call time (fixed width, UTC), then messageId to break ties.

        A delete's time is never earlier than its receipt: it removes what was received
        before it even where a client's clock stamped it later (up to the receivers'
        FUTURE_TOLERANCE_SECONDS), and older calls arriving after it stay ignored.
        """
        moment = self.occurred_at
        if type(self) is Delete:
            moment = max(moment, _utc(self.receivedAt))
        return f"{_fixed(moment)}|{self.messageId}"

    @_once
    def email(self) -> str | None:
        """The email that identifies the call's user (Engage sends one call per identifier
        of a profile, and an email is one): on an Engage call without a userId or
        anonymousId, which the receiver lets in only from Engage; and on an identify with
        a userId, which joins the two."""
        only_email = self.user_id is None and self.anonymous_id is None
        joins = type(self) is Identify and self.user_id is not None
        if not (only_email or joins):
            return None
        context = {"traits": self.context.traits} if self.context else None
        if type(self) is Identify:
            return email_in("identify", getattr(self, "traits", None), context)
        return email_in("", None, context)

    @_once
    def identities(self) -> list[IdentityKey]:
        """The identities the call names: its userId, anonymousId and email (and an
        alias's previousId, as the anonymous id it is)."""
        keys: list[IdentityKey] = []
        if self.user_id:
            keys.append((self.workspace_id, "user_id", self.user_id))
        if self.anonymous_id:
            keys.append((self.workspace_id, "anonymous_id", self.anonymous_id))
        if self.email:
            keys.append((self.workspace_id, "email", self.email))
        if type(self) is Alias and (previous := identifier(self.previousId)):
            keys.append((self.workspace_id, "anonymous_id", previous))
        return keys


class Identify(Call, frozen=True, tag="identify"):
    traits: Attributes | None = None


class Track(Call, frozen=True, tag="track"):
    event: Id
    properties: Attributes | None = None


class Page(Call, frozen=True, tag="page"):
    name: str | None = None
    category: str | None = None
    properties: Attributes | None = None


class Screen(Page, frozen=True, tag="screen"):
    pass


class Group(Call, frozen=True, tag="group"):
    groupId: Id | int
    traits: Attributes | None = None


class Alias(Call, frozen=True, tag="alias"):
    previousId: Id | int


class Delete(Call, frozen=True, tag="delete"):
    pass


AnyCall = Identify | Track | Page | Screen | Group | Alias | Delete

CALL_DECODER = msgspec.json.Decoder(AnyCall)


def _fixed(moment: datetime) -> str:
    """UTC, microseconds, `Z`: one width for every time, so text order is time order."""
    return f"{moment.isoformat(timespec='microseconds')[:26]}Z"


def _utc(moment: datetime) -> datetime:
    zone = moment.tzinfo
    if zone is UTC:  # what the receiver writes, and so nearly every call: nothing to do
        return moment
    return moment.replace(tzinfo=UTC) if zone is None else moment.astimezone(UTC)


_json_decoder = msgspec.json.Decoder()
_json_encoder = msgspec.json.Encoder()


def decode_call(raw: bytes) -> AnyCall:
    """Decode one Kafka value; raises msgspec.DecodeError for a poison message.

    Postgres text and jsonb cannot hold NUL. The receiver removes it; a record written
    before it did has it removed here, once, rather than failing its whole batch later.
    """
    if b"\\u0000" in raw:
        raw = _json_encoder.encode(_strip_nul(_json_decoder.decode(raw)))
    call: AnyCall = CALL_DECODER.decode(raw)
    return call


def _strip_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_strip_nul(k): _strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_nul(v) for v in value]
    return value
