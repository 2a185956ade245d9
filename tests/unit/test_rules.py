"""The worker's rules, call by call, applied in memory without services.

`tests/worker/test_rules.py` checks the same behaviours through Postgres (and so the SQL
that loads and writes); here each rule is checked on its own, fast.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from typing import Any

import msgspec

from sextant.calls import AnyCall, decode_call
from worker.rules.accounts import named_groups
from worker.rules.batch import Batch
from worker.rules.free_email import EmailStatus
from worker.rules.records import Account, User
from worker.rules.state import DEFAULT_LIMITS, Changes, Limits, Loaded

WS, OTHER_WS, CONNECTOR, BLOCKING_CONNECTOR = 1, 2, 10, 11
CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36"
)
_ids = itertools.count()


def call(message: dict[str, Any], ws: int = WS, connector: int = CONNECTOR) -> AnyCall:
    stamped = {
        "messageId": f"m-{next(_ids)}",
        "receivedAt": "2026-01-01T00:00:00.000Z",
        **message,
        "sextant": {"workspaceId": ws, "connectorId": connector},
    }
    return decode_call(msgspec.json.encode(stamped))


@dataclass
class Applied:
    changes: Changes
    outcomes: Counter[tuple[str, str]]

    def warned(self, kind: str) -> list[dict[str, Any]]:
        return [w.detail for _, w in self.changes.warnings if w.kind == kind]

    @property
    def users(self) -> list[User]:
        return self.changes.users

    def user(self, user_id: str) -> User:
        [found] = [u for u in self.users if u.user_id == user_id]
        return found


def apply(
    *calls: AnyCall, loaded: Loaded | None = None, limits: Limits = DEFAULT_LIMITS
) -> Applied:
    """Apply calls as the unit of work does: in call-time order, to what it loaded (every
    group of the batch has an account, created empty when new)."""
    loaded = loaded or Loaded()
    for c in calls:
        for group_id in named_groups(c):
            key = (c.workspace_id, group_id)
            loaded.accounts.setdefault(key, Account(key[0], group_id=key[1], inserted=True))
    batch = Batch(loaded, limits)
    outcomes: Counter[tuple[str, str]] = Counter()
    for c in sorted(calls, key=lambda c: c.version):
        outcomes[(type(c).__name__.lower(), batch.apply(c))] += 1
    return Applied(batch.changes(), outcomes)


def stored(
    user_id: str | None, version: str = "2026-01-01T00:00:00.000000Z|old", **columns: Any
) -> User:
    """A user as the unit of work loads it from Postgres."""
    return User(
        workspace_id=WS,
        pk=next(_ids) + 1000,
        user_id=user_id,
        columns=dict(columns),
        versions=dict.fromkeys(columns, version),
        touched=version,
    )


def test_identify_creates_one_user_and_the_newer_call_wins() -> None:
    """Two identifies of one userId make one new user with the newer call's email."""
    result = apply(
        call(
            {
                "type": "identify",
                "userId": "u1",
                "traits": {"email": "old@x.io"},
                "timestamp": "2026-01-01T00:00:00Z",
            }
        ),
        call(
            {
                "type": "identify",
                "userId": "u1",
                "traits": {"email": "new@x.io"},
                "timestamp": "2026-01-02T00:00:00Z",
            }
        ),
    )
    assert [(u.user_id, u.columns["email"], u.new) for u in result.users] == [
        ("u1", "new@x.io", True)
    ]
    assert result.changes.new_users == result.users


def test_known_traits_and_context_fill_columns() -> None:
    """camelCase or snake_case traits, address and context land in their columns."""
    result = apply(
        call(
            {
                "type": "identify",
                "userId": "u1",
                "traits": {
                    "firstName": "John",
                    "last_name": "Doe",
                    "name": "Ignored Name",
                    "phone": "555",
                    "gender": "m",
                    "address": {"country": "US", "state": "CA", "city": "SF"},
                },
                "context": {
                    "userAgent": CHROME,
                    "os": {"name": "macOS", "version": "14.1"},
                    "device": {"model": "MacBookPro18,1", "type": "desktop"},
                    "locale": "en-US",
                    "screen": {"width": 1920, "height": 1080},
                    "ip": "203.0.113.9",
                    "timezone": "America/Los_Angeles",
                    "page": {"url": "https://x.io/a"},
                },
            }
        )
    )
    user = result.user("u1")
    assert user.columns == {
        "first_name": "John",
        "last_name": "Doe",
        "phone": "555",
        "gender": "m",
        "country": "US",
        "region": "CA",
        "city": "SF",
        "user_agent": CHROME,
        "browser_family": "Chrome",
        "browser_version": "120.0",
        "os": "macOS 14.1",
        "device_name": "MacBookPro18,1",
        "device_type": "desktop",
        "language": "en-US",
        "resolution": "1920x1080",
        "ip_address": "203.0.113.9",
        "timezone": "America/Los_Angeles",
        "current_url": "https://x.io/a",
    }
    assert user.traits == {}


def test_name_is_split_only_when_first_and_last_are_absent() -> None:
    result = apply(
        call({"type": "identify", "userId": "u1", "traits": {"name": "Peter Gibbons Jr"}})
    )
    assert (result.user("u1").columns["first_name"], result.user("u1").columns["last_name"]) == (
        "Peter",
        "Gibbons Jr",
    )


def test_group_fills_the_account_and_makes_the_user_a_member() -> None:
    """Known group traits fill columns, a custom one is a string trait, the user a member."""
    result = apply(
        call(
            {
                "type": "group",
                "userId": "u1",
                "groupId": "0e8c78ea9d97a7b8185e8632",
                "traits": {
                    "name": "Initech",
                    "industry": "Technology",
                    "employees": 329,
                    "plan": "enterprise",
                    "total billed": 830,
                },
            }
        )
    )
    [account] = result.changes.accounts
    assert (account.group_id, account.columns, account.traits) == (
        "0e8c78ea9d97a7b8185e8632",
        {"name": "Initech", "industry": "Technology", "employees": 329, "plan": "enterprise"},
        {"total billed": "830"},
    )
    assert [(m.account, m.user.user_id) for m in result.changes.members] == [(account, "u1")]


def test_employees_as_a_numeric_string_counts_and_other_text_does_not() -> None:
    loaded = Loaded()
    apply(
        call({"type": "group", "userId": "u1", "groupId": "g1", "traits": {"employees": "42"}}),
        call({"type": "group", "userId": "u1", "groupId": "g2", "traits": {"employees": "many"}}),
        loaded=loaded,
    )
    employees = {a.group_id: a.columns.get("employees") for a in loaded.accounts.values()}
    assert employees == {"g1": 42, "g2": None}


def test_track_adds_an_event_and_its_definition() -> None:
    result = apply(
        call(
            {
                "type": "track",
                "userId": "u1",
                "event": "User Registered",
                "properties": {"plan": "Pro Annual", "accountType": "Facebook"},
                "timestamp": "2026-03-01T10:00:00Z",
            }
        )
    )
    [event] = result.changes.events
    assert (event.name, event.properties) == (
        "User Registered",
        {"plan": "Pro Annual", "accountType": "Facebook"},
    )
    assert result.changes.event_seen == {
        (WS, "User Registered"): (event.occurred_at, event.occurred_at)
    }


def test_defined_types_convert_and_new_names_become_strings() -> None:
    loaded = Loaded(definitions={(WS, "user", ""): {"custom_integer": "number"}})
    result = apply(
        call(
            {
                "type": "identify",
                "userId": "u1",
                "traits": {"custom_integer": "123", "custom_integer_new": 999},
            }
        ),
        loaded=loaded,
    )
    assert result.user("u1").traits == {"custom_integer": 123, "custom_integer_new": "999"}
    assert result.changes.new_definitions == {(WS, "user", "", "custom_integer_new"): "string"}


def test_an_unconvertible_value_is_left_out_and_counted() -> None:
    loaded = Loaded(definitions={(WS, "user", ""): {"seats": "number"}})
    result = apply(
        call(
            {
                "type": "identify",
                "userId": "u1",
                "traits": {"seats": "lots", "email": "a@initech.com", "tier": "gold"},
            }
        ),
        loaded=loaded,
    )
    user = result.user("u1")
    assert result.warned("attribute_not_converted") == [
        {"entity": "user", "name": "seats", "type": "number", "value": "lots"}
    ]
    assert (user.columns["email"], user.traits) == ("a@initech.com", {"tier": "gold"})


def test_event_properties_are_typed_per_event_name() -> None:
    loaded = Loaded(definitions={(WS, "event", "Order Completed"): {"total": "number"}})
    result = apply(
        call(
            {
                "type": "track",
                "userId": "u1",
                "event": "Order Completed",
                "properties": {"total": "19.5"},
            }
        ),
        call(
            {
                "type": "track",
                "userId": "u1",
                "event": "Cart Viewed",
                "properties": {"total": "19.5"},
            }
        ),
        loaded=loaded,
    )
    typed = sorted((e.name, e.properties["total"]) for e in result.changes.events)
    assert typed == [("Cart Viewed", "19.5"), ("Order Completed", 19.5)]


def engage(member: Any, when: str) -> AnyCall:
    return call(
        {
            "type": "identify",
            "userId": "u1",
            "timestamp": when,
            "traits": {"order_completed_last_30days": member},
            "context": {
                "personas": {
                    "computation_class": "audience",
                    "computation_key": "order_completed_last_30days",
                    "computation_id": "aud_1",
                    "space_id": "spa_1",
                }
            },
        }
    )


def test_an_engage_audience_is_a_boolean_trait_and_a_membership() -> None:
    entered = apply(engage(True, "2026-01-01T00:00:00Z"))
    both = apply(engage(True, "2026-01-01T00:00:00Z"), engage("false", "2026-01-02T00:00:00Z"))
    [first] = entered.changes.memberships
    [last] = both.changes.memberships
    assert entered.user("u1").traits == {"order_completed_last_30days": True}
    assert (first.member, first.computation_id, first.space_id) == (True, "aud_1", "spa_1")
    assert both.user("u1").traits == {"order_completed_last_30days": False}
    assert last.member is False
    assert entered.changes.new_definitions == {
        (WS, "user", "", "order_completed_last_30days"): "boolean"
    }


def test_audience_entered_and_exited_calls_flip_the_membership() -> None:
    personas = {"personas": {"computation_class": "audience", "computation_key": "vip"}}
    result = apply(
        call(
            {
                "type": "track",
                "userId": "u1",
                "event": "Audience Entered",
                "properties": {"audience_key": "vip"},
                "context": personas,
                "timestamp": "2026-01-01T00:00:00Z",
            }
        ),
        call(
            {
                "type": "track",
                "userId": "u1",
                "event": "Audience Exited",
                "properties": {"audience_key": "vip"},
                "context": personas,
                "timestamp": "2026-01-02T00:00:00Z",
            }
        ),
    )
    [membership] = result.changes.memberships
    assert (membership.audience_key, membership.member) == ("vip", False)
    assert result.user("u1").traits == {"vip": False}


def test_page_and_screen_add_views_count_and_widen_seen_times() -> None:
    result = apply(
        call(
            {
                "type": "page",
                "userId": "u1",
                "name": "Home",
                "timestamp": "2026-01-02T00:00:00Z",
                "properties": {"url": "https://x.io/", "path": "/", "title": "X"},
            }
        ),
        call(
            {
                "type": "screen",
                "userId": "u1",
                "name": "Settings",
                "timestamp": "2026-01-03T00:00:00Z",
            }
        ),
        call({"type": "track", "userId": "u1", "event": "E", "timestamp": "2026-01-01T00:00:00Z"}),
    )
    user = result.user("u1")
    views = [(v.view_type, v.name, v.url, v.path, v.title) for v in result.changes.page_views]
    assert user.page_views == 2
    assert (user.first_seen_at.day, user.last_seen_at.day) == (1, 3)  # type: ignore[union-attr]
    assert views == [
        ("page", "Home", "https://x.io/", "/", "X"),
        ("screen", "Settings", None, None, None),
    ]


def test_an_anonymous_user_gets_the_user_id_when_first_identified() -> None:
    """The stored anonymous user of a1 becomes u1's user: no new user, no merge."""
    anonymous = stored(None)
    loaded = Loaded(users=[anonymous], anonymous_owners={(WS, "a1"): anonymous})
    result = apply(call({"type": "identify", "userId": "u1", "anonymousId": "a1"}), loaded=loaded)
    assert result.users == [anonymous]
    assert anonymous.user_id == "u1"
    assert result.changes.new_users == []
    assert result.changes.merges == []


def test_an_anonymous_user_merges_into_the_existing_user() -> None:
    """An anonymous user whose id is named with an existing userId merges into it."""
    u1, anonymous = stored("u1"), stored(None)
    anonymous.page_views = 1
    loaded = Loaded(users=[u1, anonymous], anonymous_owners={(WS, "a1"): anonymous})
    result = apply(call({"type": "identify", "userId": "u1", "anonymousId": "a1"}), loaded=loaded)
    assert result.changes.merges == [(anonymous, u1)]
    assert u1.page_views == 1
    assert result.users == [u1]


def test_users_with_different_user_ids_are_never_merged() -> None:
    u1 = stored("u1")
    loaded = Loaded(users=[u1], anonymous_owners={(WS, "a1"): u1})
    result = apply(call({"type": "identify", "userId": "u2", "anonymousId": "a1"}), loaded=loaded)
    assert result.changes.merges == []
    assert [u.user_id for u in result.changes.new_users] == ["u2"]
    assert result.warned("merge_refused") == [
        {
            "anonymous_id": "a1",
            "belongs_to_user_id": "u1",
            "rule": "users with different userIds are never merged",
        }
    ]
    assert u1.user_id == "u1"
    assert result.changes.anonymous_first_owners == []  # a1 stays u1's


def test_alias_merges_the_previous_id_into_the_user() -> None:
    u9, anonymous = stored("u9"), stored(None)
    loaded = Loaded(users=[u9, anonymous], anonymous_owners={(WS, "anon-9"): anonymous})
    result = apply(call({"type": "alias", "previousId": "anon-9", "userId": "u9"}), loaded=loaded)
    assert result.changes.merges == [(anonymous, u9)]


def test_free_email_users_are_ignored_until_a_work_email() -> None:
    """With blocking on, a gmail identify and later calls are ignored; a work email lets in."""
    loaded = Loaded(blocking_connectors={BLOCKING_CONNECTOR})

    def on(message: dict[str, Any], when: str) -> AnyCall:
        return call({**message, "timestamp": when}, connector=BLOCKING_CONNECTOR)

    blocked = apply(
        on(
            {"type": "identify", "userId": "u1", "traits": {"email": "j@gmail.com"}},
            "2026-01-01T00:00:00Z",
        ),
        on({"type": "track", "userId": "u1", "event": "E"}, "2026-01-01T00:01:00Z"),
        on(
            {"type": "group", "userId": "u1", "groupId": "g1", "traits": {"name": "I"}},
            "2026-01-01T00:02:00Z",
        ),
        loaded=loaded,
    )
    assert blocked.outcomes == Counter(
        {("identify", "blocked"): 1, ("track", "blocked"): 1, ("group", "blocked"): 1}
    )
    assert blocked.users == blocked.changes.events == []
    assert len(blocked.warned("free_email_blocked")) == 3
    # What a call says of the workspace (its accounts, definitions) stays, as for deletes:
    # an identity's status can change later, and the workspace's rows must not depend on it.
    assert [a.group_id for a in blocked.changes.accounts] == ["g1"]
    # The free address is blocked too: Engage's calls for that email-only profile are ignored.
    statuses = blocked.changes.statuses
    assert set(statuses) == {(WS, "user_id", "u1"), (WS, "email", "j@gmail.com")}
    assert all(s.blocked for s in statuses.values())
    let_in = apply(
        on(
            {"type": "identify", "userId": "u1", "traits": {"email": "j@initech.com"}},
            "2026-01-02T00:00:00Z",
        ),
        on({"type": "track", "userId": "u1", "event": "E2"}, "2026-01-02T00:01:00Z"),
        loaded=Loaded(
            statuses={(WS, "user_id", "u1"): EmailStatus("2026-01-01", blocked=True)},
            blocking_connectors={BLOCKING_CONNECTOR},
        ),
    )
    assert let_in.changes.statuses[(WS, "user_id", "u1")].blocked is False
    assert [u.columns["email"] for u in let_in.users] == ["j@initech.com"]
    assert [e.name for e in let_in.changes.events] == ["E2"]


def test_a_free_email_is_kept_when_blocking_is_off() -> None:
    result = apply(call({"type": "identify", "userId": "u1", "traits": {"email": "j@gmail.com"}}))
    assert result.user("u1").columns["email"] == "j@gmail.com"


def test_delete_removes_the_user_and_older_calls_are_ignored() -> None:
    """A stored user is gone after its delete, with what an older call of the batch wrote;
    once the tombstone is stored, an older call is ignored and a newer one makes the user
    afresh."""
    u1 = stored("u1")
    loaded = Loaded(users=[u1], anonymous_owners={(WS, "a1"): u1})
    gone = apply(
        call({"type": "delete", "userId": "u1", "timestamp": "2026-01-02T00:00:00Z"}),
        call(
            {"type": "track", "userId": "u1", "event": "Old", "timestamp": "2026-01-01T12:00:00Z"}
        ),
        loaded=loaded,
    )
    assert [u for u, _ in gone.changes.gone] == [u1]
    assert gone.changes.events == []
    assert set(gone.changes.tombstones) == {(WS, "user_id", "u1"), (WS, "anonymous_id", "a1")}
    after = "2026-01-04T00:00:00.000Z"  # received after the delete
    later = apply(
        call(
            {
                "type": "track",
                "userId": "u1",
                "event": "Old",
                "receivedAt": after,
                "timestamp": "2026-01-01T12:00:00Z",
            }
        ),
        call(
            {
                "type": "page",
                "anonymousId": "a1",
                "timestamp": "2026-01-01T12:00:00Z",
                "receivedAt": after,
            }
        ),
        call(
            {
                "type": "track",
                "userId": "u1",
                "event": "New",
                "receivedAt": after,
                "timestamp": "2026-01-03T00:00:00Z",
            }
        ),
        loaded=Loaded(tombstones=gone.changes.tombstones),
    )
    assert (later.outcomes[("track", "deleted")], later.outcomes[("page", "deleted")]) == (1, 1)
    assert [e.name for e in later.changes.events] == ["New"]
    assert [u.user_id for u in later.changes.new_users] == ["u1"]


def test_an_older_value_does_not_overwrite_a_newer_one() -> None:
    u1 = stored("u1", version="2026-02-01T00:00:00.000000Z|m", email="new@initech.com")
    result = apply(
        call(
            {
                "type": "identify",
                "userId": "u1",
                "traits": {"email": "old@initech.com"},
                "timestamp": "2026-01-01T00:00:00Z",
            }
        ),
        loaded=Loaded(users=[u1]),
    )
    assert u1.columns["email"] == "new@initech.com"
    assert not u1.fields_changed
    assert result.users == []  # nothing newer to write


def test_the_same_user_id_in_two_workspaces_is_two_users() -> None:
    result = apply(
        call({"type": "identify", "userId": "same", "traits": {"email": "a@x.io"}}),
        call({"type": "identify", "userId": "same", "traits": {"email": "b@x.io"}}, ws=OTHER_WS),
    )
    assert sorted((u.workspace_id, u.columns["email"]) for u in result.users) == [
        (WS, "a@x.io"),
        (OTHER_WS, "b@x.io"),
    ]


def test_past_the_cap_a_new_anonymous_id_stays_apart_and_the_call_still_applies() -> None:
    """A user holding the most anonymous ids allowed gets no more; its identify applies."""
    u1 = stored("u1")
    loaded = Loaded(users=[u1], anonymous_counts={u1.pk or 0: 2})
    result = apply(
        call({"type": "identify", "userId": "u1", "anonymousId": "a9", "traits": {"plan": "pro"}}),
        call({"type": "page", "anonymousId": "a9"}),
        loaded=loaded,
        limits=Limits(max_anonymous_ids_per_user=2),
    )
    [warning] = result.warned("identity_cap_reached")
    assert (warning["anonymous_id"], warning["limit"]) == ("a9", 2)
    assert u1.traits == {"plan": "pro"}
    assert result.changes.anonymous_first_owners[0][2] is not u1  # a9's own anonymous user
    assert [v.user.user_id for v in result.changes.page_views] == [None]


def test_under_the_cap_an_anonymous_id_is_attached() -> None:
    u1 = stored("u1")
    result = apply(
        call({"type": "identify", "userId": "u1", "anonymousId": "a9"}),
        loaded=Loaded(users=[u1], anonymous_counts={u1.pk or 0: 1}),
        limits=Limits(max_anonymous_ids_per_user=2),
    )
    assert result.warned("identity_cap_reached") == []
    assert [(aid, owner) for _, aid, owner, _ in result.changes.anonymous_first_owners] == [
        ("a9", u1)
    ]


def test_a_delete_goes_by_its_receipt_when_its_own_time_is_older() -> None:
    """Segment's deletion requests carry the time they were asked for (years back, say): the
    delete still removes what was received before it, and older calls arriving after it
    stay ignored; only calls newer than its receipt start the user over."""
    seen = call(
        {
            "type": "identify",
            "userId": "u1",
            "traits": {"plan": "A"},
            "timestamp": "2026-01-01T00:00:00Z",
            "receivedAt": "2026-01-01T00:00:00.000Z",
        }
    )
    delete = call(
        {
            "type": "delete",
            "userId": "u1",
            "timestamp": "2020-05-09T23:54:49Z",
            "receivedAt": "2026-01-01T00:01:00.000Z",
        }
    )
    late = call(
        {
            "type": "identify",
            "userId": "u1",
            "traits": {"plan": "B"},
            "timestamp": "2026-01-01T00:00:30Z",
            "receivedAt": "2026-01-01T00:02:00.000Z",
        }
    )
    newer = call(
        {
            "type": "track",
            "userId": "u1",
            "event": "Back",
            "timestamp": "2026-01-01T00:03:00Z",
            "receivedAt": "2026-01-01T00:03:00.000Z",
        }
    )
    removed = apply(seen, delete)
    assert removed.users == []
    afterwards = apply(late, newer, loaded=Loaded(tombstones=removed.changes.tombstones))
    assert afterwards.outcomes[("identify", "deleted")] == 1
    assert [e.name for e in afterwards.changes.events] == ["Back"]
    assert [u.traits for u in afterwards.changes.new_users] == [{}]


def test_reserved_traits_take_their_spec_type_and_one_name_for_both_spellings() -> None:
    result = apply(
        call(
            {
                "type": "identify",
                "userId": "u1",
                "traits": {"createdAt": "2020-01-01", "age": "42", "logins": 5, "title": 7},
            }
        )
    )
    assert result.user("u1").traits == {
        "created_at": "2020-01-01T00:00:00Z",
        "age": 42,
        "logins": 5,
        "title": "7",
    }
    assert result.changes.new_definitions == {
        (WS, "user", "", "created_at"): "datetime",
        (WS, "user", "", "age"): "number",
        (WS, "user", "", "logins"): "number",
        (WS, "user", "", "title"): "string",
    }


def test_past_the_attribute_cap_new_names_are_dropped_and_recorded() -> None:
    result = apply(
        call({"type": "identify", "userId": "u1", "traits": {"a": 1, "b": 2, "c": 3}}),
        limits=Limits(max_attributes_per_entity=2),
    )
    assert result.user("u1").traits == {"a": "1", "b": "2"}
    [warning] = result.warned("attribute_cap_reached")
    assert (warning["name"], warning["limit"]) == ("c", 2)


def test_trait_computed_sets_the_user_trait() -> None:
    personas = {"computation_class": "trait", "computation_key": "lifetime_value"}
    result = apply(
        call(
            {
                "type": "track",
                "userId": "u1",
                "event": "Trait Computed",
                "properties": {"trait_key": "lifetime_value", "lifetime_value": 120},
                "context": {"personas": personas},
            }
        )
    )
    assert result.user("u1").traits == {"lifetime_value": "120"}
    assert [e.name for e in result.changes.events] == ["Trait Computed"]


def test_a_call_that_is_not_the_users_own_doing_leaves_seen_times_alone() -> None:
    result = apply(
        call({"type": "track", "userId": "u1", "event": "Synced", "context": {"active": False},
              "timestamp": "2026-01-01T00:00:00Z"}),
        call({"type": "page", "userId": "u1", "context": {"active": False}}),
    )  # fmt: skip
    user = result.user("u1")
    assert (user.first_seen_at, user.last_seen_at, user.page_views) == (None, None, 1)


def test_an_identifys_company_is_an_account_with_the_user_as_member() -> None:
    result = apply(
        call(
            {
                "type": "identify",
                "userId": "co-1",
                "traits": {
                    "email": "p@acme.io",
                    "company": {"id": "acme-co", "name": "Acme", "plan": "pro",
                                "employee_count": 50, "seats": 5},
                },
            }
        )
    )  # fmt: skip
    [account] = result.changes.accounts
    assert (account.group_id, account.columns) == (
        "acme-co",
        {"name": "Acme", "plan": "pro", "employees": 50},
    )
    assert account.traits == {"seats": "5"}
    assert [(m.account.group_id, m.user.user_id) for m in result.changes.members] == [
        ("acme-co", "co-1")
    ]
    assert result.user("co-1").traits == {}


def test_a_company_that_names_no_account_stays_a_user_trait() -> None:
    result = apply(call({"type": "identify", "userId": "u1", "traits": {"company": "Initech"}}))
    assert result.user("u1").traits == {"company": "Initech"}
    assert result.changes.members == []


def test_context_group_id_puts_events_and_page_views_with_their_account() -> None:
    loaded = Loaded()
    result = apply(
        call({"type": "track", "userId": "u1", "event": "Signed Up",
              "context": {"groupId": "g-7"}}),
        call({"type": "page", "userId": "u1", "context": {"groupId": "g-7"}}),
        loaded=loaded,
    )  # fmt: skip
    account = loaded.accounts[(WS, "g-7")]
    assert [e.account for e in result.changes.events] == [account]
    assert [v.account for v in result.changes.page_views] == [account]
    assert {(m.account.group_id, m.user.user_id) for m in result.changes.members} == {("g-7", "u1")}


def b2b(event: str, user_id: str, at: str, group: str = "g") -> AnyCall:
    return call({"type": "track", "userId": user_id, "event": event,
                 "context": {"groupId": group}, "timestamp": at})  # fmt: skip


def test_account_removed_user_is_an_ending_not_a_membership() -> None:
    result = apply(
        b2b("Account Added User", "u1", "2026-01-01T00:00:00Z"),
        b2b("Account Removed User", "u1", "2026-01-01T01:00:00Z"),
    )
    assert [m.version[:20] for m in result.changes.members] == ["2026-01-01T00:00:00."]
    assert [(m.account.group_id, m.version[:20]) for m in result.changes.endings] == [
        ("g", "2026-01-01T01:00:00.")
    ]
    assert [e.account is not None for e in result.changes.events] == [True, True]


def test_account_deleted_is_a_tombstone_that_cuts_an_account_newer_calls_named() -> None:
    """Deleted at 01:00, named again at 02:00: the account stays with only what is newer;
    a call older than the delete takes nothing to it."""
    loaded = Loaded()
    result = apply(
        call({"type": "group", "userId": "u1", "groupId": "g", "traits": {"plan": "a"},
              "timestamp": "2026-01-01T00:00:00Z"}),
        b2b("Account Deleted", "u2", "2026-01-01T01:00:00Z"),
        b2b("Signed In", "u3", "2026-01-01T02:00:00Z"),
        loaded=loaded,
    )  # fmt: skip
    account = loaded.accounts[(WS, "g")]
    assert result.changes.account_tombstones == {(WS, "g"): b2b_version(result, "u2")}
    assert result.changes.gone_accounts == []
    assert result.changes.account_cuts == [(account, b2b_version(result, "u2"))]
    assert account.columns == {}
    deleted_event = [e for e in result.changes.events if e.name == "Account Deleted"]
    assert [e.account for e in deleted_event] == [None]
    late = apply(
        call({"type": "group", "userId": "u4", "groupId": "g", "traits": {"plan": "b"},
              "timestamp": "2026-01-01T00:30:00Z"}),
        loaded=Loaded(account_tombstones={(WS, "g"): b2b_version(result, "u2")}),
    )  # fmt: skip
    assert late.changes.members == []
    assert [a.columns for a in late.changes.accounts] == []


def test_an_account_deleted_that_nothing_newer_named_is_gone() -> None:
    result = apply(
        call({"type": "group", "userId": "u1", "groupId": "g",
              "timestamp": "2026-01-01T00:00:00Z"}),
        b2b("Account Deleted", "u1", "2026-01-01T01:00:00Z"),
    )  # fmt: skip
    assert [a.group_id for a in result.changes.gone_accounts] == ["g"]


def b2b_version(result: Applied, user_id: str) -> str:
    [version] = [e.version for e in result.changes.events if e.user.user_id == user_id]
    return version
