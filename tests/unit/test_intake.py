"""ingest/intake.py without services: decompressing, parsing, validating and stamping."""

from __future__ import annotations

import gzip
import json
import uuid
import zlib
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ingest.door import JUDGED_CONTEXT, Arrival, content_message_id
from ingest.intake import (
    BodyShape,
    Intake,
    decompress,
    is_enabled,
    parse_body,
    prepare,
)
from ingest.wire import MAX_BATCH_MESSAGES, MAX_MESSAGE_BYTES, MAX_REQUEST_BYTES
from sextant.calls import Stamp
from sextant.errors import InvalidRequest, TooLarge, UnsupportedType
from sextant.identifiers import BUILT_IN, comparable

STAMP = Stamp(workspace_id=7, connector_id=3)
RECEIVED = "2026-01-02T03:04:05.678000Z"
ARRIVAL = Arrival(received_at=datetime(2026, 1, 2, 3, 4, 5, 678000, UTC))
# A message without timestamps happened when it was received.
STAMPED = {"workspaceId": 7, "connectorId": 3, "callTime": RECEIVED}


def intake(
    body: Any,
    shape: BodyShape = BodyShape.BATCH,
    default_type: str | None = None,
    destination: str = "Astrolabe",
) -> Intake:
    raw = body if isinstance(body, bytes) else msgspec.json.encode(body)
    return prepare(
        parse_body(raw, shape),
        ARRIVAL,
        default_type=default_type,
        stamp=STAMP,
        destination=destination,
    )


def records(result: Intake) -> list[tuple[str, dict[str, Any]]]:
    return [(key.decode(), json.loads(value)) for key, value in result.records]


# --- decompress ---------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", [None, "", "identity", "IDENTITY"])
def test_uncompressed_body_is_returned_as_it_is(encoding: str | None) -> None:
    """Without gzip the body is passed through untouched."""
    assert decompress(b'{"a": 1}', encoding) == b'{"a": 1}'


@pytest.mark.parametrize("encoding", ["gzip", "GZIP", "x-gzip", " gzip "])
def test_gzip_body_is_inflated(encoding: str) -> None:
    """A gzip body is inflated, whatever the spelling of its encoding."""
    assert decompress(gzip.compress(b'{"a": 1}'), encoding) == b'{"a": 1}'


def test_several_gzip_members_are_all_inflated() -> None:
    """A body of several gzip members inflates to all of them, not just the first."""
    body = gzip.compress(b'{"batch": [') + gzip.compress(b"]}")
    assert decompress(body, "gzip") == b'{"batch": []}'


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not gzip at all", id="not-gzip"),
        pytest.param(gzip.compress(b'{"a": 1}')[:-6], id="truncated"),
        pytest.param(b"", id="empty"),
        pytest.param(gzip.compress(b"{}") + b"trailing junk", id="trailing-junk"),
    ],
)
def test_broken_gzip_is_invalid(body: bytes) -> None:
    """A body that is not whole, valid gzip is refused as invalid (400), not half-read."""
    with pytest.raises(InvalidRequest):
        decompress(body, "gzip")


def test_other_encodings_are_refused() -> None:
    """Only gzip is accepted as a Content-Encoding."""
    with pytest.raises(InvalidRequest, match="br"):
        decompress(b"...", "br")


def test_gzip_bomb_is_too_large() -> None:
    """A gzip body inflating past 500 KB is refused as too large."""
    with pytest.raises(TooLarge):
        decompress(gzip.compress(b" " * (MAX_REQUEST_BYTES + 1)), "gzip")


def test_gzip_of_exactly_the_limit_is_accepted() -> None:
    """A gzip body inflating to exactly 500 KB is accepted."""
    assert len(decompress(gzip.compress(b" " * MAX_REQUEST_BYTES), "gzip")) == MAX_REQUEST_BYTES


def test_many_small_members_cannot_add_up_past_the_limit() -> None:
    """Members each under the limit are refused once together they pass it."""
    member = gzip.compress(b" " * (MAX_REQUEST_BYTES // 4))
    with pytest.raises(TooLarge):
        decompress(member * 5, "gzip")


@st.composite
def gzip_bodies(draw: st.DrawFn) -> bytes:
    """Gzip bodies, some inflating far past the limit, in one or more members, maybe cut."""
    members = []
    for _ in range(draw(st.integers(1, 3))):
        chunk = draw(st.binary(max_size=64))
        repeat = draw(st.sampled_from([1, 1000, 10_000, 300_000]))
        members.append(gzip.compress(chunk * repeat, compresslevel=1))
    body = b"".join(members)
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]
    return body


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(body=gzip_bodies())
def test_decompress_never_returns_more_than_the_limit(body: bytes) -> None:
    """Whatever the gzip body, decompress returns at most 500 KB, exactly what it holds."""
    try:
        data = decompress(body, "gzip")
    except (InvalidRequest, TooLarge):
        return
    assert len(data) <= MAX_REQUEST_BYTES
    assert data == gzip.decompress(body)


@settings(max_examples=60)
@given(data=st.binary(max_size=4096), level=st.integers(0, 9))
def test_decompress_inverts_gzip_under_the_limit(data: bytes, level: int) -> None:
    """Any body under the limit comes back byte for byte."""
    assert decompress(gzip.compress(data, compresslevel=level), "gzip") == data


@settings(max_examples=60)
@given(junk=st.binary(max_size=256))
def test_decompress_refuses_junk_without_crashing(junk: bytes) -> None:
    """Random bytes are refused with a request error, never another exception."""
    assume(not junk.startswith(b"\x1f\x8b"))
    with pytest.raises((InvalidRequest, TooLarge)):
        decompress(junk, "gzip")


# --- parse_body ---------------------------------------------------------------------------


def test_batch_body_gives_messages_key_and_batch_fields() -> None:
    """A batch body yields its messages, writeKey, context and integrations."""
    parsed = parse_body(
        b'{"batch": [{"a": 1}, {"b": 2}], "writeKey": "k", "context": {"ip": "x"},'
        b' "integrations": {"All": false}}',
        BodyShape.BATCH,
    )
    assert [bytes(m) for m in parsed.messages] == [b'{"a": 1}', b'{"b": 2}']
    assert parsed.write_key == "k"
    assert parsed.context == {"ip": "x"}
    assert parsed.integrations == {"All": False}


def test_single_body_is_one_message_with_its_write_key() -> None:
    """A single-message body, surrounded by blanks, is one message; its writeKey is read."""
    parsed = parse_body(b'\n {"userId": "u", "writeKey": "k"} \n', BodyShape.SINGLE)
    assert [bytes(m) for m in parsed.messages] == [b'{"userId": "u", "writeKey": "k"}']
    assert parsed.write_key == "k"


def test_partner_body_is_an_object_or_an_array() -> None:
    """/segment takes one message object or an array of them; an array has no body key."""
    single = parse_body(b'{"type": "delete", "userId": "u", "writeKey": "k"}', BodyShape.PARTNER)
    array = parse_body(b'[{"type": "page"}, {"type": "track"}]', BodyShape.PARTNER)
    assert len(single.messages) == 1
    assert single.write_key == "k"
    assert len(array.messages) == 2
    assert array.write_key is None


@pytest.mark.parametrize(
    ("body", "shape", "fragment"),
    [
        (b"{", BodyShape.SINGLE, "not JSON"),
        (b"", BodyShape.BATCH, "not JSON"),
        (b"[]", BodyShape.SINGLE, "message object"),
        (b'{"batch": 1}', BodyShape.BATCH, "batch"),
        (b"{}", BodyShape.BATCH, "batch"),
        (b'"text"', BodyShape.PARTNER, "array"),
        (b'{"batch": [], "context": "x"}', BodyShape.BATCH, "context"),
    ],
)
def test_malformed_bodies_are_invalid(body: bytes, shape: BodyShape, fragment: str) -> None:
    """A body that is not JSON or not the route's shape is refused, saying what is wrong."""
    with pytest.raises(InvalidRequest) as raised:
        parse_body(body, shape)
    assert fragment in raised.value.message


@pytest.mark.parametrize("shape", list(BodyShape))
def test_a_write_key_that_is_not_text_is_no_key(shape: BodyShape) -> None:
    message = b'{"type": "identify", "userId": "u", "writeKey": 5}'
    body = {
        BodyShape.SINGLE: message,
        BodyShape.PARTNER: message,
        BodyShape.BATCH: b'{"batch": [' + message + b'], "writeKey": {"k": 1}}',
    }[shape]
    assert parse_body(body, shape).write_key is None


def test_batch_over_the_count_limit_is_too_large() -> None:
    """More than 2,500 messages is refused as too large, for batches and /segment arrays."""
    messages = b",".join([b"{}"] * (MAX_BATCH_MESSAGES + 1))
    with pytest.raises(TooLarge):
        parse_body(b'{"batch": [' + messages + b"]}", BodyShape.BATCH)
    with pytest.raises(TooLarge):
        parse_body(b"[" + messages + b"]", BodyShape.PARTNER)
    exact = b",".join([b"{}"] * MAX_BATCH_MESSAGES)
    assert len(parse_body(b"[" + exact + b"]", BodyShape.PARTNER).messages) == MAX_BATCH_MESSAGES


# --- prepare: validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"type": "identify"}, "neither userId nor anonymousId"),
        ({"type": "identify", "userId": "", "anonymousId": ""}, "neither userId"),
        ({"type": "identify", "userId": {"id": 1}}, "neither userId"),
        ({"type": "track", "userId": "u"}, "track has no event"),
        ({"type": "track", "userId": "u", "event": ""}, "track has no event"),
        ({"type": "group", "userId": "u"}, "group has no groupId"),
        ({"type": "alias", "userId": "u"}, "previousId"),
        ({"type": "alias", "anonymousId": "a", "previousId": "p"}, "userId"),
        ({"type": "delete", "anonymousId": "a"}, "delete has no userId"),
        ({"type": "track", "userId": "u", "event": 5}, "track has no event"),
        ({"type": "page", "userId": "u", "messageId": "m" * 251}, "messageId is longer"),
        ({"type": "page", "userId": "u" * 501}, "userId is longer"),
        ({"userId": "u"}, "no type"),
        ("a string", "not a JSON object"),
    ],
)
def test_invalid_message_is_rejected_with_its_reason(message: Any, reason: str) -> None:
    """An invalid message is rejected by index, with a reason naming what is wrong."""
    valid = {"type": "identify", "userId": "u"}
    result = intake({"batch": [valid, message]})
    assert len(result.records) == 1
    [(index, text)] = result.rejected
    assert index == 1
    assert reason in text


def test_every_message_invalid_raises_400_listing_them() -> None:
    """With no usable message, the request is invalid and lists every rejection."""
    with pytest.raises(InvalidRequest) as raised:
        intake({"batch": [{"type": "identify"}, {"type": "track", "userId": "u"}]})
    assert [i for i, _ in raised.value.rejected] == [0, 1]


def test_unsupported_types_alone_raise_501() -> None:
    """A request whose only problem is unsupported types is refused as unsupported."""
    with pytest.raises(UnsupportedType):
        intake({"batch": [{"type": "merge", "userId": "u"}, {"type": "x", "userId": "u"}]})


def test_unsupported_and_invalid_together_raise_400() -> None:
    """Mixed reasons for refusing every message make a plain invalid request."""
    with pytest.raises(InvalidRequest):
        intake({"batch": [{"type": "merge", "userId": "u"}, {"type": "identify"}]})


def test_oversized_message_alone_is_too_large_but_in_a_batch_is_rejected() -> None:
    """A message over 32 KB is a 413 when alone, and a rejection beside valid ones."""
    big = {"type": "identify", "userId": "u", "traits": {"blob": "x" * MAX_MESSAGE_BYTES}}
    with pytest.raises(TooLarge):
        intake(big, BodyShape.SINGLE, "identify")
    result = intake({"batch": [big, {"type": "identify", "userId": "u"}]})
    assert [i for i, _ in result.rejected] == [0]
    assert len(result.records) == 1


def test_route_type_is_the_default() -> None:
    """A single-message route supplies the type a message leaves out."""
    [(_, message)] = records(intake({"userId": "u", "event": "E"}, BodyShape.SINGLE, "track"))
    assert message["type"] == "track"


@pytest.mark.parametrize("identity", [{"userId": 12}, {"userId": "12"}, {"anonymousId": 12}])
def test_numeric_ids_are_accepted_and_keyed_as_text(identity: dict[str, Any]) -> None:
    """Numeric ids, which some libraries send, are accepted; the key holds them as text."""
    [(key, _)] = records(intake({"type": "identify", **identity}, BodyShape.SINGLE))
    assert key == "7:12"


# --- prepare: integrations ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("integrations", "enabled"),
    [
        (None, True),
        ({}, True),
        ({"All": True}, True),
        ({"All": False}, False),
        ({"All": False, "Astrolabe": True}, True),
        ({"All": False, "Astrolabe": {"setting": 1}}, True),
        ({"All": False, "Astrolabe": None}, False),
        ({"Astrolabe": False}, False),
        ({"All": True, "Astrolabe": False}, False),
        ({"Mixpanel": False}, True),
        ({"All": False, "Mixpanel": True}, False),
    ],
)
def test_is_enabled_follows_segments_rule(
    integrations: dict[str, Any] | None, enabled: bool
) -> None:
    """`All: false` turns us off unless named; our name set to false always turns us off."""
    assert is_enabled(integrations, "Astrolabe") is enabled


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)
_others = st.dictionaries(
    st.text(max_size=10).filter(lambda k: k not in ("All", "Astrolabe")), _json_values
)


@given(others=_others, own=_json_values, all_value=_json_values)
def test_is_enabled_invariants(others: dict[str, Any], own: Any, all_value: Any) -> None:
    """Our own `false` always disables, our own `true` always enables, other names never count."""
    assert is_enabled({**others, "Astrolabe": False, "All": all_value}, "Astrolabe") is False
    assert is_enabled({**others, "Astrolabe": True, "All": all_value}, "Astrolabe") is True
    for base in ({}, {"Astrolabe": own}, {"All": all_value}, {"Astrolabe": own, "All": all_value}):
        assert is_enabled({**others, **base}, "Astrolabe") is is_enabled(base, "Astrolabe")
    assert is_enabled({**others, "All": False}, "Astrolabe") is False


def test_destination_name_is_configurable() -> None:
    """The name looked up in `integrations` is the configured destination's."""
    body = {"batch": [{"type": "identify", "userId": "u", "integrations": {"Other": False}}]}
    assert intake(body, destination="Other").skipped == 1
    assert intake(body, destination="Astrolabe").skipped == 0


def test_skipped_calls_are_counted_not_produced() -> None:
    """Calls that turn us off are counted as skipped and produce no record."""
    result = intake(
        {
            "batch": [
                {"type": "identify", "userId": "u", "integrations": {"All": False}},
                {"type": "identify", "userId": "u"},
            ],
        }
    )
    assert result.skipped == 1
    assert len(result.records) == 1


def test_only_skipped_calls_are_not_an_error() -> None:
    """A request whose calls are all skipped is a success with nothing to produce."""
    result = intake(
        {"batch": [{"type": "identify", "userId": "u"}], "integrations": {"All": False}}
    )
    assert (result.skipped, result.records, result.rejected) == (1, [], [])


# --- prepare: stamps and merging ----------------------------------------------------------


def test_batch_fields_merge_into_each_message_own_keys_winning() -> None:
    """Batch context and integrations fill each message's; the message's own keys win."""
    body = {
        "batch": [
            {"type": "identify", "userId": "u", "context": {"locale": "fr"}},
            {"type": "identify", "userId": "u", "context": "not an object"},
            {"type": "identify", "userId": "u", "integrations": {"Mixpanel": True}},
        ],
        "context": {"locale": "en", "ip": "1.2.3.4"},
        "integrations": {"Mixpanel": False, "Amplitude": False},
    }
    first, second, third = (m for _, m in records(intake(body)))
    assert first["context"] == {"locale": "fr", "ip": "1.2.3.4"}
    assert second["context"] == {"locale": "en", "ip": "1.2.3.4"}
    assert third["integrations"] == {"Mixpanel": True, "Amplitude": False}


def test_derived_message_id_depends_only_on_the_content() -> None:
    """The derived messageId is a UUID fixed by the message's bytes."""
    raw = b'{"type":"track","userId":"u","event":"E"}'
    assert content_message_id(raw) == content_message_id(bytes(raw))
    assert content_message_id(raw) != content_message_id(raw.replace(b"E", b"F"))
    assert uuid.UUID(content_message_id(raw)).bytes


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate keys: {keys}"
    return dict(pairs)


# The fields the door reads; any other is kept as the client sent it.
_JUDGED = {
    "type", "userId", "anonymousId", "previousId", "groupId", "event", "messageId",
    "timestamp", "originalTimestamp", "sentAt", "integrations", "context", "traits",
    "properties", "name", "category",
}  # fmt: skip
_no_nul = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
_free_keys = st.text(_no_nul, max_size=12).filter(lambda k: k not in _JUDGED)
_clean_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(_no_nul, max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(_no_nul, max_size=5), inner)
    ),
    max_leaves=5,
)
_absent = object()


@st.composite
def messages(draw: st.DrawFn, typed: bool) -> dict[str, Any]:
    """Identify messages the door need not mend, with any other fields, including ones the
    receiver stamps."""
    user_id = st.text(_no_nul, min_size=1, max_size=8).filter(
        lambda u: comparable(u) not in BUILT_IN
    )
    message: dict[str, Any] = {"userId": draw(user_id)}
    message.update(draw(st.dictionaries(_free_keys, _clean_values, max_size=4)))
    # A body-level writeKey must be text (else the body is refused); the others may be anything.
    for name, values in (
        ("sextant", _clean_values),
        ("receivedAt", _clean_values),
        ("writeKey", st.text(_no_nul, max_size=8)),
    ):
        value = draw(st.just(_absent) | values)
        if value is not _absent:
            message[name] = value
    type_options = ["identify"] if typed else [_absent, None, "", "identify"]
    for name, options in (("type", type_options), ("messageId", [_absent, None, "", "m-1"])):
        value = draw(st.sampled_from(options))
        if value is not _absent:
            message[name] = value
    return message


@st.composite
def encodings(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "ensure_ascii": draw(st.booleans()),
        "indent": draw(st.sampled_from([None, 0, 2])),
        "separators": draw(st.sampled_from([None, (",", ":"), (" ,  ", " :  ")])),
    }


@settings(max_examples=300)
@given(data=st.data(), shape=st.sampled_from(list(BodyShape)), style=encodings())
def test_record_is_exactly_the_message_plus_stamps(
    data: st.DataObject, shape: BodyShape, style: dict[str, Any]
) -> None:
    """Each record decodes to the client's message, without writeKey, plus the stamps, once
    each: fields the door does not judge are kept as they are."""
    message = data.draw(messages(typed=shape is not BodyShape.SINGLE))
    raw = json.dumps(message, **style).encode()
    body = {
        BodyShape.SINGLE: raw,
        BodyShape.BATCH: b'{"batch": [' + raw + b"]}",
        BodyShape.PARTNER: b"[" + raw + b"]",
    }[shape]
    result = intake(body, shape, "identify" if shape is BodyShape.SINGLE else None)

    [(key, value)] = result.records
    record = json.loads(value, object_pairs_hook=_unique_keys)
    own_id = message.get("messageId")
    expected = {k: v for k, v in message.items() if k != "writeKey"} | {
        "type": "identify",
        "receivedAt": RECEIVED,
        "sextant": STAMPED,
        "messageId": own_id if isinstance(own_id, str) and own_id else content_message_id(raw),
    }
    assert record == expected
    assert key == f"7:{message['userId']}".encode()


_context_keys = st.text(_no_nul, max_size=5).filter(lambda k: k not in JUDGED_CONTEXT)


@settings(max_examples=100)
@given(
    outer=st.dictionaries(_context_keys, _clean_values, max_size=4),
    inner=st.dictionaries(_context_keys, _clean_values, max_size=4),
)
def test_merged_context_is_the_batch_context_overridden_by_the_message(
    outer: dict[str, Any], inner: dict[str, Any]
) -> None:
    """For any two contexts, the record's is the batch's updated with the message's own."""
    message = {"type": "identify", "userId": "u", "context": inner}
    [(_, record)] = records(intake({"batch": [message], "context": outer}))
    assert record["context"] == {**outer, **inner}


def test_values_are_kept_as_the_client_wrote_them() -> None:
    """Numbers and escaped text reach Kafka with the values the client sent."""
    raw = b'{"type":"identify","userId":"u","traits":{"n":1.50,"s":"\\u00e9","i":12}}'
    [(_, record)] = records(intake(raw, BodyShape.SINGLE))
    assert record["traits"] == {"n": 1.5, "s": "\u00e9", "i": 12}


def test_compressed_equals_plain() -> None:
    """The same body gives the same records whether or not it came gzip-encoded."""
    body = msgspec.json.encode({"batch": [{"type": "identify", "userId": "u"}]})
    plain = intake(body)
    inflated = intake(decompress(zlib.compress(body, wbits=31), "gzip"))
    assert plain.records == inflated.records
