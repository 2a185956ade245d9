"""The door's quick way for messages that need no mending (`ingest.as_sent`) lets in exactly
what its member-by-member way does: the same call, byte for byte, with the same warnings,
and nothing the other way would refuse or mend."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.as_sent import _Context, read_as_sent
from ingest.door import JUDGED_CONTEXT, Admitted, Arrival, admit, admit_member_by_member
from ingest.lists import WorkspaceLists
from sextant.errors import RequestRejected

RECEIVED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LISTS = WorkspaceLists(blocked=frozenset({"shared-device"}))
_encode = msgspec.json.Encoder()

_LONG_ID, _LONG_NAME = "i" * 501, "n" * 256
# Each member's values: the first few need no mending, the rest the door mends or refuses.
_ID_CLEAN = ["u1", "anon-7", "i" * 500]
_ID_DIRTY = ["", "null", " Null ", "shared-device", _LONG_ID, 5, 2.5, True, None, [], {}]
_TEXT_CLEAN, _TEXT_DIRTY = ["a", "", "é"], [None, 3, False, [], {"a": 1}]
_TIME_CLEAN = [
    "2026-03-01T11:59:00.000Z",
    "2026-03-01T13:59:00+02:00",
    "2026-03-01T11:59:00",
    "2026-03-01T11:59:00.123456789Z",
    "2020-05-09 23:54:49.209808489 +0000 UTC m=+70366.298768264",
    "2099-01-01T00:00:00Z",
    " 2026-03-01T11:59:00Z ",
]
_TIME_DIRTY = ["not a time", "", None, 12]
_OBJECT_CLEAN, _OBJECT_DIRTY = [{}, {"a": 1}], [None, [], "x", 3]
_NAME_CLEAN, _NAME_DIRTY = ["k", "n" * 255], [_LONG_NAME, None, 7, ["k"]]
_SCALARS = ["v", 1, 1.5, True, None, [], {"k": "v"}, "n" * 255, _LONG_NAME]


def _either(clean: list[Any], dirty: list[Any]) -> tuple[Any, Any]:
    return st.sampled_from(clean), st.sampled_from(clean + dirty)


def _attributes(dirty: bool) -> Any:
    names = ["plan", "email"] + (["n" * 255, _LONG_NAME] if dirty else ["n" * 255])
    keys = _NAME_CLEAN + (_NAME_DIRTY if dirty else [])
    account = st.fixed_dictionaries(
        {},
        optional={
            "id": st.sampled_from(_ID_CLEAN + (_ID_DIRTY if dirty else [])),
            "name": st.sampled_from(_SCALARS),
            "audience_key": st.sampled_from(keys),
            (_LONG_NAME if dirty else "size"): st.sampled_from(_SCALARS),
        },
    )
    return st.fixed_dictionaries(
        {},
        optional={
            **{name: st.sampled_from(_SCALARS) for name in names},
            "audience_key": st.sampled_from(keys),
            "trait_key": st.sampled_from(keys),
            "company": st.one_of(account, account, st.sampled_from(_SCALARS)),
        },
    )


def _context(dirty: bool) -> Any:
    pick = 1 if dirty else 0
    personas = st.fixed_dictionaries(
        {},
        optional={
            "computation_class": _either(_TEXT_CLEAN, _TEXT_DIRTY)[pick],
            "computation_key": _either(_NAME_CLEAN, _NAME_DIRTY)[pick],
            "space_id": _either(_TEXT_CLEAN, _TEXT_DIRTY)[pick],
        },
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "ip": _either(_TEXT_CLEAN, _TEXT_DIRTY)[pick],
            "userAgent": _either(_TEXT_CLEAN, _TEXT_DIRTY)[pick],
            "groupId": _either(_ID_CLEAN, _ID_DIRTY)[pick],
            "active": _either([True, False], [None, "yes"])[pick],
            "library": _either(_OBJECT_CLEAN, _OBJECT_DIRTY)[pick],
            "traits": _either([{"email": "a@b.co"}, {}], [None, "x"])[pick],
            "personas": personas | _either(_OBJECT_CLEAN, _OBJECT_DIRTY)[pick],
            "custom": st.sampled_from(_SCALARS),
        },
    )


def _members(dirty: bool) -> dict[str, Any]:
    pick = 1 if dirty else 0
    types = ["identify", "track", "page", "screen", "group", "alias", "delete"]
    return {
        "type": _either(types, ["", "boom", None, 1])[pick],
        "userId": _either(_ID_CLEAN, _ID_DIRTY)[pick],
        "anonymousId": _either(_ID_CLEAN, _ID_DIRTY)[pick],
        "previousId": _either(_ID_CLEAN, _ID_DIRTY)[pick],
        "groupId": _either(_ID_CLEAN, _ID_DIRTY)[pick],
        "event": _either(_ID_CLEAN, _ID_DIRTY)[pick],
        "messageId": _either(["m-1", "m" * 250], ["", "m" * 251, None, 9])[pick],
        "timestamp": _either(_TIME_CLEAN, _TIME_DIRTY)[pick],
        "originalTimestamp": _either(_TIME_CLEAN, _TIME_DIRTY)[pick],
        "sentAt": _either(_TIME_CLEAN, _TIME_DIRTY)[pick],
        "name": _either(_TEXT_CLEAN, _TEXT_DIRTY)[pick],
        "category": _either(_TEXT_CLEAN, _TEXT_DIRTY)[pick],
        "context": _context(dirty) | _either(_OBJECT_CLEAN, _OBJECT_DIRTY)[pick],
        "integrations": _either([{}, {"All": False, "Sextant": True}], _OBJECT_DIRTY)[pick],
        "traits": _attributes(dirty) | _either(_OBJECT_CLEAN, _OBJECT_DIRTY)[pick],
        "properties": _attributes(dirty) | _either(_OBJECT_CLEAN, _OBJECT_DIRTY)[pick],
        "receivedAt": st.sampled_from(_TIME_CLEAN + _TIME_DIRTY),
        "sextant": st.sampled_from(_OBJECT_CLEAN + _OBJECT_DIRTY),
        "writeKey": st.sampled_from(_TEXT_CLEAN + _TEXT_DIRTY),
        "extra": st.sampled_from(_SCALARS),
    }


_CLEAN, _DIRTY = _members(False), _members(True)
_OBJECTS = ["context", "traits", "properties"]


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    """Members that need no mending, and at most two drawn from every kind of value."""
    chosen = draw(st.sets(st.sampled_from(sorted(_CLEAN)), max_size=len(_CLEAN)))
    # Objects have the most members to get wrong: drawn dirty more often.
    dirty = draw(st.sets(st.sampled_from([*sorted(_DIRTY), *_OBJECTS * 4]), max_size=2))
    return {name: draw((_DIRTY if name in dirty else _CLEAN)[name]) for name in chosen | dirty}


def _outcome(judge: Any, raw: bytes, arrival: Arrival, default_type: str | None) -> Any:
    try:
        admitted: Admitted = judge(raw, arrival, default_type=default_type)
    except RequestRejected as e:
        return (type(e), e.message)
    return (
        admitted.call_type,
        admitted.identity,
        _encode.encode(admitted.message),  # the same members in the same order
        admitted.call_time,
        admitted.warnings,
    )


@settings(max_examples=1500)
@given(
    message=messages(),
    default_type=st.sampled_from([None, "track", "identify"]),
    correct_clock=st.booleans(),
    spaced=st.booleans(),
)
def test_the_quick_way_lets_in_what_the_door_does(
    message: dict[str, Any], default_type: str | None, correct_clock: bool, spaced: bool
) -> None:
    raw = json.dumps(message, separators=(", ", ": ") if spaced else (",", ":")).encode()
    arrival = Arrival(received_at=RECEIVED, correct_clock=correct_clock, lists=LISTS)
    quick = _outcome(admit, raw, arrival, default_type)
    assert quick == _outcome(admit_member_by_member, raw, arrival, default_type)


@settings(max_examples=1000)
@given(
    call=st.sampled_from(
        [{"type": "identify"}, {"type": "group", "groupId": "g"}, {"type": "track", "event": "E"}]
    ),
    traits=_attributes(dirty=False),
    properties=_attributes(dirty=False),
    where=st.sampled_from(["traits", "properties", "company"]),
    name=st.sampled_from(["id", "audience_key", "trait_key", "plan", _LONG_NAME]),
    value=st.sampled_from(_ID_CLEAN + _ID_DIRTY + _NAME_DIRTY),
)
def test_the_quick_way_names_attributes_and_accounts_as_the_door_does(
    call: dict[str, Any],
    traits: dict[str, Any],
    properties: dict[str, Any],
    where: str,
    name: str,
    value: Any,
) -> None:
    """Attribute names, Engage's naming keys and `traits.company` (an account) are where a
    clean-looking message most often still needs the door: one member of them set to
    anything."""
    if where == "company":
        account = traits.get("company")
        traits["company"] = {**(account if isinstance(account, dict) else {}), name: value}
    else:
        (traits if where == "traits" else properties)[name] = value
    raw = json.dumps({**call, "userId": "u1", "traits": traits, "properties": properties})
    arrival = Arrival(received_at=RECEIVED, lists=LISTS)
    quick = _outcome(admit, raw.encode(), arrival, None)
    assert quick == _outcome(admit_member_by_member, raw.encode(), arrival, None)


def test_segment_deliveries_take_the_quick_way() -> None:
    """A call as Segment forwards it to a destination (its own receivedAt and sentAt, a
    library context, integrations) and as a library sends it both need no mending."""
    segment = {
        "anonymousId": "507f191e810c19729de860ea",
        "channel": "browser",
        "context": {
            "ip": "8.8.8.8",
            "library": {"name": "analytics.js", "version": "2.11.1"},
            "page": {"path": "/academy/", "title": "Analytics Academy"},
            "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_12_2)",
        },
        "event": "Course Clicked",
        "integrations": {},
        "messageId": "ajs-f8ca1e4de5024d9430b3928bd8ac6b96",
        "properties": {"title": "Intro to Analytics"},
        "receivedAt": "2015-12-12T19:11:01.266Z",
        "sentAt": "2015-12-12T19:11:01.169Z",
        "timestamp": "2015-12-12T19:11:01.249Z",
        "type": "track",
        "userId": "97980cfea0067",
        "originalTimestamp": "2015-12-12T19:11:01.152Z",
    }
    library = {"userId": "u1", "traits": {"email": "u1@initech.com", "company": {"id": "c1"}}}
    for message, default_type in ((segment, None), (library, "identify")):
        raw = json.dumps(message).encode()
        assert read_as_sent(raw, default_type, frozenset()) is not None


def test_what_needs_mending_takes_the_door() -> None:
    for message in (
        {"type": "track", "event": "E", "userId": 42},  # a number made text
        {"type": "track", "event": "E", "userId": "null", "anonymousId": "a"},  # blocked
        {"type": "identify", "userId": "u", "timestamp": "yesterday"},  # not a time
        {"type": "identify", "userId": "u", "traits": None},  # null for an object
        {"type": "identify", "context": {"personas": {}, "traits": {"email": "a@b.co"}}},
    ):
        assert read_as_sent(json.dumps(message).encode(), None, frozenset()) is None


def test_the_typed_model_names_every_member_the_door_judges() -> None:
    """A member the door comes to judge must be typed here too, or a message with it wrong
    would pass unchanged."""
    assert set(_Context.__struct_fields__) == JUDGED_CONTEXT
