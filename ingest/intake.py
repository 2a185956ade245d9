"""Turn a request body into Kafka records: parse, validate, honour integrations, stamp.

Pure functions: no HTTP, no Kafka, no clock of their own, so they are tested fast.
"""

from __future__ import annotations

import enum
import hashlib
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

import msgspec
from msgspec import UNSET

from ingest.wire import (
    MAX_BATCH_MESSAGES,
    MAX_MESSAGE_BYTES,
    MAX_REQUEST_BYTES,
    BatchBody,
    BatchHeads,
    KeyOnly,
    MessageHead,
)
from sextant.calls import CALL_TYPES, STAMP_FIELD, Stamp, identifier
from sextant.errors import InvalidRequest, RequestRejected, TooLarge, UnsupportedType

_batch_decoder = msgspec.json.Decoder(BatchBody)
_batch_heads_decoder = msgspec.json.Decoder(BatchHeads)
_single_decoder = msgspec.json.Decoder(KeyOnly)
_partner_decoder = msgspec.json.Decoder(list[msgspec.Raw] | KeyOnly)
_head_decoder = msgspec.json.Decoder(MessageHead)
_dict_decoder = msgspec.json.Decoder(dict[str, Any])
_encoder = msgspec.json.Encoder()


class BodyShape(enum.Enum):
    SINGLE = "single"  # /v1/identify, /v1/track, ...: one message
    BATCH = "batch"  # /v1/batch, /v1/import: {"batch": [...]}
    PARTNER = "partner"  # /segment: one message or an array of them


@dataclass(frozen=True, slots=True)
class ParsedBody:
    messages: list[msgspec.Raw]
    write_key: str | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    # Every message's head, decoded in one pass when all of them decode; else None, and
    # each message is decoded on its own so a bad one is rejected by its index.
    heads: list[MessageHead] | None = None


@dataclass(slots=True)
class Intake:
    """What to produce, and what to tell the client about the rest."""

    records: list[tuple[bytes, bytes]] = field(default_factory=list)  # (key, value)
    types: list[str] = field(default_factory=list)  # type of each record, for metrics
    skipped: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


def decompress(body: bytes, encoding: str | None) -> bytes:
    """Undo `Content-Encoding: gzip`, refusing to inflate past the request limit.

    A gzip body may hold several members, one after the other (RFC 1952, 2.2); each is
    inflated, and anything after the last that is not a member is refused, not dropped.
    """
    if not encoding or encoding.strip().lower() == "identity":
        return body
    if encoding.strip().lower() not in ("gzip", "x-gzip"):
        raise InvalidRequest(f"Content-Encoding {encoding!r} is not supported: use gzip")
    data = bytearray()
    rest = body
    while True:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            # The budget is at least 1 here: 0 would mean no limit at all.
            data += inflater.decompress(rest, MAX_REQUEST_BYTES + 1 - len(data))
        except zlib.error as e:
            raise InvalidRequest("body is not valid gzip") from e
        if len(data) > MAX_REQUEST_BYTES or inflater.unconsumed_tail:
            raise TooLarge(f"request is over {MAX_REQUEST_BYTES // 1024} KB once decompressed")
        if not inflater.eof:
            raise InvalidRequest("body is not valid gzip: it ends too soon")
        rest = inflater.unused_data
        if not rest:
            return bytes(data)


def parse_body(body: bytes, shape: BodyShape) -> ParsedBody:
    """Split a body into its messages without decoding them."""
    body = body.strip()
    try:
        match shape:
            case BodyShape.BATCH:
                batch = _batch_decoder.decode(body)
                parsed = ParsedBody(
                    batch.batch,
                    batch.writeKey,
                    batch.context,
                    batch.integrations,
                    _heads_at_once(body),
                )
            case BodyShape.SINGLE:
                parsed = ParsedBody([msgspec.Raw(body)], _single_decoder.decode(body).writeKey)
            case BodyShape.PARTNER:
                top = _partner_decoder.decode(body)
                if isinstance(top, list):
                    parsed = ParsedBody(top)
                else:
                    parsed = ParsedBody([msgspec.Raw(body)], top.writeKey)
    except msgspec.ValidationError as e:
        raise InvalidRequest(f"body is not a valid {_described(shape)}: {e}") from e
    except msgspec.DecodeError as e:
        raise InvalidRequest(f"body is not JSON: {e}") from e
    if len(parsed.messages) > MAX_BATCH_MESSAGES:
        raise TooLarge(
            f"batch has {len(parsed.messages)} messages; the limit is {MAX_BATCH_MESSAGES}"
        )
    return parsed


def _heads_at_once(body: bytes) -> list[MessageHead] | None:
    """One decoder pass over a batch costs less than one per message."""
    try:
        return _batch_heads_decoder.decode(body).batch
    except msgspec.DecodeError:  # ValidationError included: some message is bad
        return None


def _described(shape: BodyShape) -> str:
    return {
        BodyShape.BATCH: 'batch object ({"batch": [...]})',
        BodyShape.SINGLE: "message object",
        BodyShape.PARTNER: "message object or array of messages",
    }[shape]


def prepare(
    parsed: ParsedBody,
    *,
    default_type: str | None,
    stamp: Stamp,
    destination: str,
    received_at: str,
) -> Intake:
    """Validate each message and build its Kafka record; invalid ones are rejected by index."""
    intake = Intake()
    refusals: set[type[RequestRejected]] = set()
    merge = parsed.context is not None or parsed.integrations is not None
    stamp_bytes = _encoder.encode(stamp)
    # Most messages need only the same two stamps: build their prefix once per request.
    common_prefix = b"".join(
        (b'{"receivedAt":', _encoder.encode(received_at), _STAMP_KEY, stamp_bytes, b",")
    )
    workspace = f"{stamp.workspace_id}:"
    heads = parsed.heads
    for index, raw in enumerate(parsed.messages):
        try:
            head = _head(raw, None if heads is None else heads[index])
            call_type = _check(head, default_type)
        except (InvalidRequest, TooLarge, UnsupportedType) as e:
            refusals.add(type(e))
            intake.rejected.append((index, e.message))
            continue
        integrations = _merged(parsed.integrations, head.integrations)
        if integrations and not is_enabled(integrations, destination):
            intake.skipped += 1
            continue
        identity = identifier(head.userId) or identifier(head.anonymousId)
        key = (workspace + identity).encode()  # type: ignore[operator]  # _check: not None
        if merge or not _spliceable(head, call_type):
            value = _restamp(raw, head, call_type, parsed, stamp, received_at)
        elif head.type == call_type and head.message_id is not None:
            value = b"".join((common_prefix, memoryview(raw)[1:]))
        else:
            value = _splice(raw, head, call_type, stamp_bytes, received_at)
        intake.records.append((key, value))
        intake.types.append(call_type)
    if not intake.records and not intake.skipped and intake.rejected:
        raise _refusal(refusals, intake.rejected)
    return intake


_STAMP_KEY = f',"{STAMP_FIELD}":'.encode()


def _refusal(
    refusals: set[type[RequestRejected]], rejected: list[tuple[int, str]]
) -> RequestRejected:
    """Why a request with no usable message is refused: one shared reason keeps its status
    (413 for a message over the limit, 501 for an unsupported type), anything else is a 400."""
    if refusals == {TooLarge}:
        return TooLarge(rejected[0][1])
    if refusals == {UnsupportedType}:
        return UnsupportedType(rejected[0][1])
    reason = rejected[0][1] if len(rejected) == 1 else "every message is invalid"
    return InvalidRequest(reason, rejected)


def _head(raw: msgspec.Raw, decoded: MessageHead | None) -> MessageHead:
    """The message's head, decoded here unless the whole batch's already was."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise TooLarge(f"message is over {MAX_MESSAGE_BYTES // 1024} KB")
    if decoded is not None:
        return decoded
    try:
        return _head_decoder.decode(raw)
    except msgspec.ValidationError as e:
        raise InvalidRequest(f"invalid message: {e}") from e
    except msgspec.DecodeError as e:
        raise InvalidRequest(f"message is not JSON: {e}") from e


def _check(head: MessageHead, default_type: str | None) -> str:
    """The message's type, once its required fields are known to be there."""
    call_type = head.declared_type or default_type
    if call_type is None:
        raise InvalidRequest("message has no type")
    if call_type not in CALL_TYPES:
        raise UnsupportedType(f"type {call_type!r} is not supported")
    user_id, anonymous_id = identifier(head.userId), identifier(head.anonymousId)
    if not user_id and not anonymous_id:
        raise InvalidRequest("message has neither userId nor anonymousId")
    if call_type == "track" and not head.event:
        raise InvalidRequest("track has no event")
    if call_type == "group" and not identifier(head.groupId):
        raise InvalidRequest("group has no groupId")
    if call_type == "alias" and not (identifier(head.previousId) and user_id):
        raise InvalidRequest("alias needs previousId and userId")
    if call_type == "delete" and not user_id:
        raise InvalidRequest("delete has no userId")
    return call_type


def is_enabled(integrations: dict[str, Any] | None, destination: str) -> bool:
    """Segment's rule: `All: false` turns every destination off unless named; `Name: false` off."""
    if not integrations:
        return True
    own = integrations.get(destination)
    if own is False:
        return False
    if integrations.get("All") is False:
        return own is not None
    return True


def _merged(outer: dict[str, Any] | None, inner: dict[str, Any] | None) -> dict[str, Any] | None:
    if outer is None:
        return inner
    return {**outer, **(inner or {})}


def content_message_id(raw: bytes) -> str:
    """A retried body gets the same id, so the worker applies it once."""
    return str(uuid.UUID(bytes=hashlib.sha256(raw).digest()[:16]))


def _stamps(head: MessageHead, call_type: str, raw: bytes, received_at: str) -> dict[str, str]:
    stamps = {"receivedAt": received_at}
    if head.type != call_type:
        stamps["type"] = call_type
    if head.message_id is None:
        stamps["messageId"] = content_message_id(raw)
    return stamps


def _spliceable(head: MessageHead, call_type: str) -> bool:
    """Stamps may be spliced in only when the message holds none of their keys, not even as
    null: a spliced stamp next to the client's own key is a duplicate, and decoders keep the
    last one, which would be the client's."""
    return (
        head.receivedAt is UNSET
        and head.writeKey is UNSET
        and head.sextant is UNSET
        and (head.type is UNSET or head.type == call_type)
        and (head.messageId is UNSET or head.message_id is not None)
    )


def _splice(
    raw: msgspec.Raw, head: MessageHead, call_type: str, stamp: bytes, received_at: str
) -> bytes:
    """Add the stamps in front of the message's own fields, without re-encoding it."""
    data = bytes(raw)
    prefix = _encoder.encode(_stamps(head, call_type, data, received_at))
    return b"".join((prefix[:-1], _STAMP_KEY, stamp, b",", data[1:]))


def _restamp(
    raw: msgspec.Raw,
    head: MessageHead,
    call_type: str,
    parsed: ParsedBody,
    stamp: Stamp,
    received_at: str,
) -> bytes:
    """The slow path: merge batch-level fields and overwrite anything the client must not set."""
    message = _dict_decoder.decode(raw)
    for name, outer in (("context", parsed.context), ("integrations", parsed.integrations)):
        if outer is not None:
            inner = message.get(name)
            message[name] = {**outer, **inner} if isinstance(inner, dict) else outer
    message.pop("writeKey", None)
    message.update(_stamps(head, call_type, bytes(raw), received_at))
    message[STAMP_FIELD] = stamp
    return _encoder.encode(message)
