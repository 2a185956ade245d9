"""The door (`ingest.door`), probe by probe: what it refuses, what it mends and records, and
that what it admits is what a worker decodes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from ingest.door import Admitted, Arrival, admit
from ingest.intake import BodyShape, Intake, parse_body, prepare
from sextant.calls import CALL_DECODER, Stamp
from sextant.errors import InvalidRequest, TooLarge

STAMP = Stamp(workspace_id=7, connector_id=3)


NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, UTC)
ARRIVAL = Arrival(received_at=NOW)


def door(message: Any, default_type: str | None = None, arrival: Arrival = ARRIVAL) -> Admitted:
    raw = message if isinstance(message, bytes) else json.dumps(message).encode()
    return admit(raw, arrival, default_type=default_type)


def warnings(admitted: Admitted) -> list[tuple[str, str]]:
    return [(w.kind, w.detail.get("field", "")) for w in admitted.warnings]


def intake(body: bytes, shape: BodyShape = BodyShape.BATCH) -> Intake:
    return prepare(
        parse_body(body, shape),
        ARRIVAL,
        default_type=None,
        stamp=STAMP,
        destination="Astrolabe",
    )


def nested(levels: int) -> bytes:
    """A track whose one property nests until the message is `levels` deep."""
    inner = b'{"a":' * (levels - 1) + b"1" + b"}" * (levels - 1)
    return b'{"type":"track","userId":"u","event":"E","properties":' + inner + b"}"


TRACK = {"type": "track", "userId": "u", "event": "E"}


# --- depth -------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [33, 980, 1000, 5000])
def test_deeper_than_32_levels_is_refused_with_the_reason(levels: int) -> None:
    with pytest.raises(InvalidRequest, match="nested deeper than 32 levels"):
        door(nested(levels))


def test_32_levels_are_admitted() -> None:
    admitted = door(nested(32))
    assert admitted.call_type == "track"


@pytest.mark.parametrize("shape", [BodyShape.BATCH, BodyShape.PARTNER])
@pytest.mark.parametrize("levels", [980, 5000])
def test_a_deep_message_in_a_batch_is_refused_alone(shape: BodyShape, levels: int) -> None:
    """Even past what the decoder can skip, the good messages around it are accepted."""
    good = json.dumps(TRACK).encode()
    messages = b"[" + good + b"," + nested(levels) + b"," + good + b"]"
    body = b'{"batch":' + messages + b',"writeKey":"k"}' if shape is BodyShape.BATCH else messages
    parsed = parse_body(body, shape)
    result = intake(body, shape)
    assert len(result.records) == 2
    assert [(i, "nested deeper" in m) for i, m in result.rejected] == [(1, True)]
    assert parsed.write_key == ("k" if shape is BodyShape.BATCH else None)


def test_a_single_message_too_deep_is_refused_before_its_key_is_read() -> None:
    with pytest.raises(InvalidRequest, match="nested deeper"):
        parse_body(nested(1000), BodyShape.SINGLE)


# --- numbers, text -----------------------------------------------------------------------


@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"1" * 400])
def test_numbers_outside_a_double_are_left_out_and_recorded(number: bytes) -> None:
    raw = b'{"type":"track","userId":"u","event":"E","properties":{"big":' + number + b',"ok":1}}'
    admitted = door(raw)
    assert admitted.message["properties"] == {"ok": 1}
    assert warnings(admitted) == [("field_dropped", "properties.big")]


def test_nul_is_removed_from_text_and_keys_and_recorded() -> None:
    admitted = door({**TRACK, "properties": {"a\x00b": "c\x00d"}, "event": "E\x00"})
    assert admitted.message["properties"] == {"ab": "cd"}
    assert admitted.message["event"] == "E"
    assert [k for k, _ in warnings(admitted)] == ["field_coerced"]


@pytest.mark.parametrize(
    "raw", [b'{"type":"track","userId":"\\ud800","event":"E"}', b'{"type":"track","userId":"\xff"}']
)
def test_text_that_is_not_unicode_is_refused(raw: bytes) -> None:
    with pytest.raises(InvalidRequest, match="not valid Unicode"):
        door(raw)


# --- lengths -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "length", "limit"),
    [
        ("messageId", 5000, 250),
        ("userId", 10_000, 500),
        ("anonymousId", 501, 500),
        ("groupId", 10_000, 500),
        ("previousId", 10_000, 500),
        ("event", 10_000, 500),
    ],
)
def test_long_identifiers_are_refused(field: str, length: int, limit: int) -> None:
    message = {"type": "group", "userId": "u", "groupId": "g", "event": "E", field: "x" * length}
    with pytest.raises(InvalidRequest, match=f"{field} is longer than {limit}"):
        door({**message, "type": "track"} if field == "event" else message)


def test_identifiers_at_their_limit_are_admitted() -> None:
    admitted = door({**TRACK, "userId": "u" * 500, "messageId": "m" * 250, "event": "e" * 500})
    assert admitted.identity == "u" * 500


def test_trait_and_property_keys_longer_than_255_are_left_out() -> None:
    admitted = door({"type": "identify", "userId": "u", "traits": {"k" * 10_000: 1, "ok": 2}})
    assert admitted.message["traits"] == {"ok": 2}
    assert [k for k, _ in warnings(admitted)] == ["field_dropped"]


def test_a_message_over_32_kb_is_too_large() -> None:
    with pytest.raises(TooLarge):
        door({**TRACK, "properties": {"x": "y" * 33_000}})


# --- types -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("traits", [1, 2]),
        ("traits", "plan=pro"),
        ("properties", "a string"),
        ("context", "a string"),
        ("integrations", 5),
    ],
)
def test_containers_of_the_wrong_type_are_left_out_and_recorded(field: str, value: Any) -> None:
    admitted = door({"type": "identify", "userId": "u", field: value})
    assert field not in admitted.message
    assert warnings(admitted) == [("field_dropped", field)]


@pytest.mark.parametrize("value", [None, []])
@pytest.mark.parametrize("field", ["traits", "properties", "context", "integrations"])
def test_null_or_empty_array_containers_are_simply_absent(field: str, value: Any) -> None:
    admitted = door({"type": "identify", "userId": "u", field: value})
    assert field not in admitted.message
    assert admitted.warnings == []


def test_personas_as_a_string_is_left_out() -> None:
    admitted = door({**TRACK, "context": {"personas": "audience", "ip": "1.2.3.4"}})
    assert admitted.message["context"] == {"ip": "1.2.3.4"}
    assert warnings(admitted) == [("field_dropped", "context.personas")]


def test_engage_computation_ids_of_any_scalar_type_become_text() -> None:
    personas = {
        "computation_class": "audience",
        "computation_key": "vip",
        "computation_id": 12345,
        "space_id": 678,
    }
    admitted = door({**TRACK, "context": {"personas": personas}})
    assert admitted.message["context"]["personas"] == {
        **personas,
        "computation_id": "12345",
        "space_id": "678",
    }
    assert [k for k, _ in warnings(admitted)] == ["field_coerced", "field_coerced"]


ENGAGE = {"personas": {"computation_class": "audience", "computation_key": "vip"}}


@pytest.mark.parametrize(
    "message",
    [
        {"type": "track", "event": "Audience Entered",
         "context": {**ENGAGE, "traits": {"email": " Jo@Initech.com "}}},
        {"type": "identify", "traits": {"email": "jo@initech.com", "vip": True},
         "context": ENGAGE},
    ],
)  # fmt: skip
def test_an_engage_call_for_an_email_only_profile_is_admitted_by_its_email(
    message: dict[str, Any],
) -> None:
    """Engage sends one call per identifier of a profile; an email is one. The email, in
    lower case, is the call's identity (its Kafka key)."""
    admitted = door(message)
    assert admitted.identity == "jo@initech.com"
    stamps = {"receivedAt": NOW.isoformat(), "sextant": {"workspaceId": 7, "connectorId": 3}}
    decoded = CALL_DECODER.decode(msgspec.json.encode({**admitted.message, **stamps}))
    assert decoded.email == "jo@initech.com"  # the worker finds the same identity


@pytest.mark.parametrize(
    ("message", "why"),
    [
        ({"type": "track", "event": "E", "context": {"traits": {"email": "jo@initech.com"}}},
         "not from Engage"),
        ({"type": "group", "groupId": "g", "traits": {"email": "billing@initech.com"},
          "context": ENGAGE}, "a group's traits are its account's"),
        ({"type": "track", "event": "E", "context": {**ENGAGE, "traits": {"email": "nobody"}}},
         "not an email"),
        ({"type": "delete", "context": {**ENGAGE, "traits": {"email": "jo@initech.com"}}},
         "a delete needs a userId"),
    ],
)  # fmt: skip
def test_an_email_is_no_identity_outside_engages_email_only_calls(
    message: dict[str, Any], why: str
) -> None:
    with pytest.raises(InvalidRequest, match="neither userId nor anonymousId"):
        door(message)


@pytest.mark.parametrize(
    ("value", "kept", "kind"),
    [(5, "5", "field_coerced"), (True, "true", "field_coerced"), ({"a": 1}, None, "field_dropped")],
)
def test_page_name_and_category_are_text(value: Any, kept: str | None, kind: str) -> None:
    admitted = door({"type": "page", "userId": "u", "name": value, "category": value})
    assert (admitted.message.get("name"), admitted.message.get("category")) == (kept, kept)
    assert [k for k, _ in warnings(admitted)] == [kind, kind]


def test_numeric_identifiers_become_text_and_are_recorded() -> None:
    admitted = door({"type": "group", "userId": 42, "groupId": 7})
    assert (admitted.message["userId"], admitted.message["groupId"]) == ("42", "7")
    assert admitted.identity == "42"
    assert warnings(admitted) == [("field_coerced", "userId"), ("field_coerced", "groupId")]


# --- time --------------------------------------------------------------------------------


def test_segment_deletion_request_in_go_time_is_admitted() -> None:
    """Segment's partner deletion request: Go's time format and `integrations: []`."""
    admitted = door(
        {
            "type": "delete",
            "userId": "5678",
            "messageId": "delete-1",
            "originalTimestamp": "2020-05-09 23:54:49.209808489 +0000 UTC m=+70366.298768264",
            "integrations": [],
            "context": None,
        }
    )
    assert admitted.message["originalTimestamp"] == datetime(2020, 5, 9, 23, 54, 49, 209808, UTC)
    assert "integrations" not in admitted.message
    assert admitted.warnings == []


@pytest.mark.parametrize("value", ["soon", 1700000000, "2020-13-45T00:00:00Z", {"at": 1}])
def test_a_timestamp_that_does_not_parse_is_ignored_and_recorded(value: Any) -> None:
    admitted = door({**TRACK, "timestamp": value})
    assert "timestamp" not in admitted.message
    assert warnings(admitted) == [("timestamp_unparsable", "timestamp")]


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z"),
        ("2026-01-02T03:04:05.123+02:00", "2026-01-02T01:04:05.123000Z"),
        ("2026-01-02 03:04:05", "2026-01-02T03:04:05Z"),
        ("2026-01-02", "2026-01-02T00:00:00Z"),
    ],
)
def test_timestamps_are_read_as_iso_8601_with_or_without_a_zone(value: str, canonical: str) -> None:
    """Written to the record in RFC 3339, in UTC."""
    sent_at = door({**TRACK, "sentAt": value}).message["sentAt"]
    assert msgspec.json.encode(sent_at).decode() == f'"{canonical}"'


# --- what stays ----------------------------------------------------------------------------


def test_unknown_top_level_fields_are_kept_as_they_are() -> None:
    extra = {"_metadata": {"bundled": ["Segment.io"]}, "projectId": "p1", "channel": "server"}
    for version in (2, "1.1"):
        admitted = door({**TRACK, **extra, "version": version})
        assert {k: admitted.message[k] for k in (*extra, "version")} == {
            **extra,
            "version": version,
        }


def test_the_client_cannot_set_the_receivers_stamps() -> None:
    admitted = door({**TRACK, "receivedAt": "2000-01-01", "sextant": {"workspaceId": 1}})
    assert "receivedAt" not in admitted.message
    assert "sextant" not in admitted.message


def test_every_admitted_record_decodes_with_the_workers_model() -> None:
    """Records carry the door's warnings in the stamp, and decode as the worker decodes."""
    body = json.dumps({"batch": [{**TRACK, "userId": 5, "properties": "x"}]}).encode()
    [(_, value)] = intake(body).records
    call = CALL_DECODER.decode(value)
    assert call.user_id == "5"
    assert [w.kind for w in call.sextant.warnings] == ["field_coerced", "field_dropped"]
    assert msgspec.json.decode(value)["sextant"]["workspaceId"] == 7


# --- call time ---------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_a_device_clock_an_hour_ahead_is_corrected_on_library_routes() -> None:
    """Segment's rule on /v1/*: received - (sentAt - timestamp)."""
    ahead = NOW + timedelta(hours=1)
    message = {**TRACK, "timestamp": iso(ahead - timedelta(seconds=3)), "sentAt": iso(ahead)}
    assert door(message).call_time == NOW - timedelta(seconds=3)


def test_segments_own_delivery_is_trusted_as_it_is_sent() -> None:
    """/segment: Segment corrected the clock already; its timestamp is the call time."""
    sent = NOW - timedelta(minutes=5)
    message = {**TRACK, "timestamp": iso(sent), "sentAt": iso(NOW + timedelta(hours=1))}
    assert door(message, arrival=Arrival(NOW, correct_clock=False)).call_time == sent


def test_original_timestamp_stands_in_for_a_missing_timestamp() -> None:
    message = {**TRACK, "originalTimestamp": iso(NOW - timedelta(days=1))}
    assert door(message).call_time == NOW - timedelta(days=1)


def test_no_timestamp_means_the_receipt() -> None:
    assert door(TRACK).call_time == NOW


@pytest.mark.parametrize("correct", [True, False])
def test_a_call_time_in_the_future_is_clamped_to_the_receipt_and_recorded(correct: bool) -> None:
    """2099 would win every field forever: it becomes the receipt, with a warning."""
    admitted = door({**TRACK, "timestamp": "2099-01-01T00:00:00Z"}, arrival=Arrival(NOW, correct))
    [warning] = admitted.warnings
    assert admitted.call_time == NOW
    assert warning.kind == "timestamp_in_future"
    assert warning.detail["call_time"] == "2099-01-01T00:00:00.000000Z"


def test_the_clamp_applies_after_the_correction_and_follows_the_tolerance() -> None:
    """An hour ahead without sentAt cannot be corrected: clamped. Within the tolerance: kept."""
    ahead = {**TRACK, "timestamp": iso(NOW + timedelta(hours=1))}
    assert door(ahead).call_time == NOW
    lenient = Arrival(NOW, future_tolerance=timedelta(hours=2))
    assert door(ahead, arrival=lenient).call_time == NOW + timedelta(hours=1)
    slightly = {**TRACK, "timestamp": iso(NOW + timedelta(seconds=30))}
    assert door(slightly).call_time == NOW + timedelta(seconds=30)


@pytest.mark.parametrize("name", ["audience_key", "trait_key"])
def test_an_engage_key_too_long_to_name_an_attribute_is_left_out(name: str) -> None:
    admitted = door({**TRACK, "event": "Audience Entered", "properties": {name: "k" * 300}})
    assert name not in admitted.message["properties"]
    assert warnings(admitted) == [("field_dropped", f"properties.{name}")]


def test_account_ids_in_context_and_company_are_text_of_an_identifiers_length() -> None:
    admitted = door(
        {
            "type": "identify",
            "userId": "u1",
            "traits": {"company": {"id": 42, "name": "Acme", "k" * 300: 1}},
            "context": {"groupId": "g" * 501},
        }
    )
    assert admitted.message["traits"]["company"] == {"id": "42", "name": "Acme"}
    assert "groupId" not in admitted.message["context"]
    assert sorted(kind for kind, _ in warnings(admitted)) == [
        "field_coerced",
        "field_dropped",
        "field_dropped",
    ]
