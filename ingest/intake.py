"""Turn a request body into Kafka records: split it into messages, let each through the
door (`ingest.door`) or refuse it by its index, honour `integrations`, and stamp.

Pure functions: no HTTP, no Kafka, no clock of their own, so they are tested fast.
"""

from __future__ import annotations

import enum
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from ingest import scan
from ingest.door import Admitted, Arrival, admit
from ingest.mending import Mends, decode_object
from ingest.wire import MAX_BATCH_MESSAGES, MAX_REQUEST_BYTES, BatchBody, KeyOnly
from sextant.calls import CALL_DECODER, MAX_DEPTH, STAMP_FIELD, IngestionWarning, Stamp
from sextant.errors import InvalidRequest, RequestRejected, TooLarge, UnsupportedType

_batch_decoder = msgspec.json.Decoder(BatchBody)
_single_decoder = msgspec.json.Decoder(KeyOnly)
_partner_decoder = msgspec.json.Decoder(list[msgspec.Raw] | KeyOnly)
_encoder = msgspec.json.Encoder()


class BodyShape(enum.Enum):
    SINGLE = "single"  # /v1/identify, /v1/track, ...: one message
    BATCH = "batch"  # /v1/batch, /v1/import: {"batch": [...]}
    PARTNER = "partner"  # /segment: one message or an array of them


@dataclass(frozen=True, slots=True)
class ParsedBody:
    messages: list[bytes]
    write_key: str | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    # What mending a batch's own context and integrations took; it applies to every message.
    warnings: list[IngestionWarning] = field(default_factory=list)


@dataclass(slots=True)
class Intake:
    """What to produce, and what to tell the client about the rest."""

    records: list[tuple[bytes, bytes]] = field(default_factory=list)  # (key, value)
    types: list[str] = field(default_factory=list)  # call type of each record, for metrics
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
                parsed = _batch(body)
            case BodyShape.SINGLE:
                parsed = ParsedBody([body], _write_key(body))
            case BodyShape.PARTNER:
                parsed = _partner(body)
    except msgspec.ValidationError as e:
        raise InvalidRequest(f"body is not a valid {_described(shape)}: {e}") from e
    except (msgspec.DecodeError, UnicodeDecodeError) as e:
        raise InvalidRequest(f"body is not JSON: {e}") from e
    if len(parsed.messages) > MAX_BATCH_MESSAGES:
        raise TooLarge(
            f"batch has {len(parsed.messages)} messages; the limit is {MAX_BATCH_MESSAGES}"
        )
    return parsed


def _write_key(message: bytes) -> str | None:
    """A single message's `writeKey`; the door says what else is wrong with the message."""
    if scan.nests_deeper_than(message, MAX_DEPTH):
        raise InvalidRequest(f"message is nested deeper than {MAX_DEPTH} levels")
    return _single_decoder.decode(message).write_key


def _batch(body: bytes) -> ParsedBody:
    try:
        batch = _batch_decoder.decode(body)
    except RecursionError:  # some message nests past what msgspec can skip
        batch = _batch_by_scanning(body)
    mends = Mends()
    context = _batch_object(batch.context, mends, "context")
    integrations = _batch_object(batch.integrations, mends, "integrations")
    messages = [bytes(m) for m in batch.batch]
    return ParsedBody(messages, batch.write_key, context, integrations, mends.warnings)


def _batch_by_scanning(body: bytes) -> BatchBody:
    """The batch body read by the scanner, for a body too deep for the decoder."""
    members = {key: value for key, value in scan.parts(body) if key is not None}
    if b'"batch"' not in members:
        raise InvalidRequest('body is not a valid batch object ({"batch": [...]})')
    key = members.get(b'"writeKey"')
    return BatchBody(
        [msgspec.Raw(m) for _, m in scan.parts(members[b'"batch"'])],
        msgspec.Raw(members.get(b'"context"', b"null")),
        msgspec.Raw(members.get(b'"integrations"', b"null")),
        _write_key(b'{"writeKey":' + key + b"}") if key is not None else None,
    )


def _batch_object(raw: msgspec.Raw, mends: Mends, name: str) -> dict[str, Any] | None:
    """A batch's own `context` or `integrations`: an object, or absent as null or []."""
    if bytes(raw).strip() in (b"null", b"[]"):
        return None
    return decode_object(bytes(raw), mends, f"batch {name}", root=name)


def _partner(body: bytes) -> ParsedBody:
    try:
        top = _partner_decoder.decode(body)
    except RecursionError:  # some message nests past what msgspec can skip
        if body[:1] != b"[":
            raise InvalidRequest(f"message is nested deeper than {MAX_DEPTH} levels") from None
        return ParsedBody([m for _, m in scan.parts(body)])
    if isinstance(top, list):
        return ParsedBody([bytes(m) for m in top])
    return ParsedBody([body], top.write_key)


def _described(shape: BodyShape) -> str:
    return {
        BodyShape.BATCH: 'batch object ({"batch": [...]})',
        BodyShape.SINGLE: "message object",
        BodyShape.PARTNER: "message object or array of messages",
    }[shape]


def prepare(
    parsed: ParsedBody,
    arrival: Arrival,
    *,
    default_type: str | None,
    stamp: Stamp,
    destination: str,
) -> Intake:
    """Judge each message and build its Kafka record; refused ones are listed by index."""
    intake = Intake()
    refusals: set[type[RequestRejected]] = set()
    workspace = f"{stamp.workspace_id}:"
    received_at = arrival.received_at
    for index, raw in enumerate(parsed.messages):
        try:
            admitted = admit(
                raw,
                arrival,
                default_type=default_type,
                batch_context=parsed.context,
                batch_integrations=parsed.integrations,
            )
            if not is_enabled(admitted.message.get("integrations"), destination) or (
                _suppressed(admitted, arrival)
            ):
                intake.skipped += 1
                continue
            value = _record(admitted, stamp, parsed.warnings, received_at)
        except (InvalidRequest, TooLarge, UnsupportedType) as e:
            refusals.add(type(e))
            intake.rejected.append((index, e.message))
            continue
        intake.records.append(((workspace + admitted.identity).encode(), value))
        intake.types.append(admitted.call_type)
    if not intake.records and not intake.skipped and intake.rejected:
        raise _refusal(refusals, intake.rejected)
    return intake


def _suppressed(admitted: Admitted, arrival: Arrival) -> bool:
    """A suppressed userId's calls are not forwarded; its deletes are."""
    user_id = admitted.message.get("userId")
    return admitted.call_type != "delete" and user_id in arrival.lists.suppressed


def _record(
    admitted: Admitted, stamp: Stamp, batch_warnings: list[IngestionWarning], received_at: datetime
) -> bytes:
    """The Kafka value: the canonical message with the receiver's stamps, checked with the
    worker's own decoder, so that what is accepted here is what a worker can apply."""
    message = admitted.message
    message["receivedAt"] = received_at
    warnings = batch_warnings + admitted.warnings
    message[STAMP_FIELD] = msgspec.structs.replace(
        stamp, call_time=admitted.call_time, warnings=warnings
    )
    try:
        value = _encoder.encode(message)
        CALL_DECODER.decode(value)
    except (msgspec.DecodeError, UnicodeEncodeError) as e:
        raise InvalidRequest(f"message cannot be applied: {e}") from e
    return value


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
