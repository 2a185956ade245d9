"""What each call does, rule by rule, applied as a worker applies batches, on real Postgres."""

from __future__ import annotations

from typing import Any

import asyncpg

from ops import attributes
from ops.keys import CreatedKey, create_key
from tests.support.fixture_types import Apply

CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36"
)


async def users(db: asyncpg.Connection, ws: CreatedKey, *columns: str) -> list[dict[str, Any]]:
    rows = await db.fetch(
        f"SELECT id, user_id, {', '.join(columns) or 'email'} FROM users "
        "WHERE workspace_id = $1 ORDER BY id",
        ws.workspace_id,
    )
    return [dict(r) for r in rows]


async def count(db: asyncpg.Connection, table: str, ws: CreatedKey) -> int:
    return int(
        await db.fetchval(f"SELECT count(*) FROM {table} WHERE workspace_id = $1", ws.workspace_id)
    )


async def test_identify_creates_then_updates_one_user(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """identify("userId123", {email}) creates the user; a later identify updates the same row."""
    await apply(
        {
            "type": "identify",
            "userId": "userId123",
            "traits": {"email": "john.doe@example.com"},
            "timestamp": "2026-01-01T00:00:00Z",
        }
    )
    first = await users(db, workspace, "email")
    await apply(
        {
            "type": "identify",
            "userId": "userId123",
            "traits": {"email": "john@initech.com"},
            "timestamp": "2026-01-02T00:00:00Z",
        }
    )
    second = await users(db, workspace, "email")
    assert [(u["user_id"], u["email"]) for u in first] == [("userId123", "john.doe@example.com")]
    assert [(u["id"], u["email"]) for u in second] == [(first[0]["id"], "john@initech.com")]


async def test_identify_maps_traits_and_context_to_columns(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """Known traits (camel or snake case), address, and context land in their columns."""
    await apply(
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
    [user] = await users(
        db,
        workspace,
        "first_name",
        "last_name",
        "phone",
        "gender",
        "country",
        "region",
        "city",
        "user_agent",
        "browser_family",
        "browser_version",
        "os",
        "device_name",
        "device_type",
        "language",
        "resolution",
        "ip_address",
        "timezone",
        "current_url",
        "traits",
    )
    assert user | {"id": 0} == {
        "id": 0,
        "user_id": "u1",
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
        "traits": {},
    }


async def test_name_is_split_only_when_first_and_last_are_absent(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """`name` fills first_name and last_name when neither is given."""
    await apply({"type": "identify", "userId": "u1", "traits": {"name": "Peter Gibbons Jr"}})
    [user] = await users(db, workspace, "first_name", "last_name")
    assert (user["first_name"], user["last_name"]) == ("Peter", "Gibbons Jr")


async def test_group_creates_account_and_membership(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """The seed's group call: account columns, a typed custom trait, and the user as member."""
    await apply(
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
    account = await db.fetchrow(
        "SELECT id, group_id, name, industry, employees, plan, traits FROM accounts "
        "WHERE workspace_id = $1",
        workspace.workspace_id,
    )
    assert dict(account) | {"id": 0} == {
        "id": 0,
        "group_id": "0e8c78ea9d97a7b8185e8632",
        "name": "Initech",
        "industry": "Technology",
        "employees": 329,
        "plan": "enterprise",
        "traits": {"total billed": "830"},
    }
    members = await db.fetch(
        "SELECT u.user_id FROM account_users au JOIN users u ON u.id = au.user_pk "
        "WHERE au.workspace_id = $1 AND au.account_pk = $2",
        workspace.workspace_id,
        account["id"],
    )
    assert [m["user_id"] for m in members] == ["u1"]


async def test_employees_as_numeric_string_counts(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """employees "42" is stored as the number 42; "many" is left out."""
    await apply(
        {"type": "group", "userId": "u1", "groupId": "g1", "traits": {"employees": "42"}},
        {"type": "group", "userId": "u1", "groupId": "g2", "traits": {"employees": "many"}},
    )
    rows = await db.fetch(
        "SELECT group_id, employees FROM accounts WHERE workspace_id = $1 ORDER BY group_id",
        workspace.workspace_id,
    )
    assert [tuple(r) for r in rows] == [("g1", 42), ("g2", None)]


async def test_track_adds_event_and_definition(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """The seed's track call: an events row with its properties, and the event's definition."""
    await apply(
        {
            "type": "track",
            "userId": "u1",
            "event": "User Registered",
            "properties": {"plan": "Pro Annual", "accountType": "Facebook"},
            "timestamp": "2026-03-01T10:00:00Z",
        }
    )
    event = await db.fetchrow(
        "SELECT name, properties, occurred_at FROM events WHERE workspace_id = $1",
        workspace.workspace_id,
    )
    definition = await db.fetchrow(
        "SELECT name, first_seen_at, last_seen_at FROM event_definitions WHERE workspace_id = $1",
        workspace.workspace_id,
    )
    assert event["name"] == "User Registered"
    assert event["properties"] == {"plan": "Pro Annual", "accountType": "Facebook"}
    assert definition["name"] == "User Registered"
    assert definition["first_seen_at"] == event["occurred_at"] == definition["last_seen_at"]


async def test_defined_types_convert_and_new_names_become_strings(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """custom_integer (number) '123' is stored 123; custom_integer_new 999 becomes "999"."""
    await attributes.define(db, workspace.workspace, "user", "", "custom_integer", "number")
    await apply(
        {
            "type": "identify",
            "userId": "u1",
            "traits": {"custom_integer": "123", "custom_integer_new": 999},
        }
    )
    [user] = await users(db, workspace, "traits")
    types = await db.fetch(
        "SELECT name, type FROM attribute_definitions WHERE workspace_id = $1 "
        "AND entity = 'user' ORDER BY name",
        workspace.workspace_id,
    )
    assert user["traits"] == {"custom_integer": 123, "custom_integer_new": "999"}
    assert [tuple(t) for t in types] == [
        ("custom_integer", "number"),
        ("custom_integer_new", "string"),
    ]


async def test_unconvertible_value_is_left_out_and_counted(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """A value that does not convert is dropped; the rest of the call applies."""
    await attributes.define(db, workspace.workspace, "user", "", "seats", "number")
    outcome = await apply(
        {
            "type": "identify",
            "userId": "u1",
            "traits": {"seats": "lots", "email": "a@initech.com", "tier": "gold"},
        }
    )
    [user] = await users(db, workspace, "email", "traits")
    assert outcome.warnings["attribute_not_converted"] == 1
    assert (user["email"], user["traits"]) == ("a@initech.com", {"tier": "gold"})


async def test_event_properties_are_typed_per_event_name(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """Event property definitions are per event name: the same name can differ by event."""
    await attributes.define(db, workspace.workspace, "event", "Order Completed", "total", "number")
    await apply(
        {
            "type": "track",
            "userId": "u1",
            "event": "Order Completed",
            "properties": {"total": "19.5"},
        },
        {"type": "track", "userId": "u1", "event": "Cart Viewed", "properties": {"total": "19.5"}},
    )
    rows = await db.fetch(
        "SELECT name, properties FROM events WHERE workspace_id = $1 ORDER BY name",
        workspace.workspace_id,
    )
    assert [(r["name"], r["properties"]) for r in rows] == [
        ("Cart Viewed", {"total": "19.5"}),
        ("Order Completed", {"total": 19.5}),
    ]


def engage(member: Any, when: str) -> dict[str, Any]:
    return {
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


async def test_engage_audience_entered_then_exited_flips_trait_and_membership(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """An audience identify sets a boolean trait and a membership; exiting flips both."""
    await apply(engage(True, "2026-01-01T00:00:00Z"))
    entered = await db.fetchrow(
        "SELECT u.traits, m.member, m.computation_id, m.space_id FROM users u "
        "JOIN audience_memberships m ON m.workspace_id = u.workspace_id AND m.user_pk = u.id "
        "WHERE u.workspace_id = $1",
        workspace.workspace_id,
    )
    await apply(engage("false", "2026-01-02T00:00:00Z"))
    exited = await db.fetchrow(
        "SELECT u.traits, m.member FROM users u JOIN audience_memberships m "
        "ON m.workspace_id = u.workspace_id AND m.user_pk = u.id WHERE u.workspace_id = $1",
        workspace.workspace_id,
    )
    kind = await db.fetchval(
        "SELECT type FROM attribute_definitions WHERE workspace_id = $1 "
        "AND name = 'order_completed_last_30days'",
        workspace.workspace_id,
    )
    assert tuple(entered) == ({"order_completed_last_30days": True}, True, "aud_1", "spa_1")
    assert tuple(exited) == ({"order_completed_last_30days": False}, False)
    assert kind == "boolean"


async def test_audience_entered_and_exited_track_calls_flip_membership(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """Audience Entered / Audience Exited track calls keep the membership and trait too."""
    personas = {"personas": {"computation_class": "audience", "computation_key": "vip"}}
    await apply(
        {
            "type": "track",
            "userId": "u1",
            "event": "Audience Entered",
            "properties": {"audience_key": "vip", "vip": True},
            "context": personas,
            "timestamp": "2026-01-01T00:00:00Z",
        }
    )
    entered = await db.fetchval(
        "SELECT member FROM audience_memberships WHERE workspace_id = $1", workspace.workspace_id
    )
    await apply(
        {
            "type": "track",
            "userId": "u1",
            "event": "Audience Exited",
            "properties": {"audience_key": "vip", "vip": False},
            "context": personas,
            "timestamp": "2026-01-02T00:00:00Z",
        }
    )
    exited = await db.fetchval(
        "SELECT member FROM audience_memberships WHERE workspace_id = $1", workspace.workspace_id
    )
    [user] = await users(db, workspace, "traits")
    assert (entered, exited, user["traits"]) == (True, False, {"vip": False})


async def test_page_and_screen_add_views_and_move_seen_times(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """Each page or screen adds a page_views row and one to the counter; seen times widen."""
    await apply(
        {
            "type": "page",
            "userId": "u1",
            "name": "Home",
            "timestamp": "2026-01-02T00:00:00Z",
            "properties": {"url": "https://x.io/", "path": "/", "title": "X"},
        },
        {"type": "screen", "userId": "u1", "name": "Settings", "timestamp": "2026-01-03T00:00:00Z"},
    )
    await apply(
        {"type": "track", "userId": "u1", "event": "E", "timestamp": "2026-01-01T00:00:00Z"}
    )
    [user] = await users(db, workspace, "page_views", "first_seen_at", "last_seen_at")
    views = await db.fetch(
        "SELECT kind, name, url, path, title FROM page_views "
        "WHERE workspace_id = $1 ORDER BY occurred_at",
        workspace.workspace_id,
    )
    assert user["page_views"] == 2
    assert (user["first_seen_at"].day, user["last_seen_at"].day) == (1, 3)
    assert [tuple(v) for v in views] == [
        ("page", "Home", "https://x.io/", "/", "X"),
        ("screen", "Settings", None, None, None),
    ]


async def test_anonymous_user_is_attached_then_merged(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """anonymousId-only calls create a user; identify with both ids attaches the userId."""
    await apply({"type": "page", "anonymousId": "a1"})
    before = await users(db, workspace, "page_views")
    await apply({"type": "identify", "userId": "u1", "anonymousId": "a1"})
    after = await users(db, workspace, "page_views")
    assert [(u["user_id"], u["page_views"]) for u in before] == [(None, 1)]
    assert [(u["id"], u["user_id"], u["page_views"]) for u in after] == [(before[0]["id"], "u1", 1)]


async def test_anonymous_user_merges_into_existing_user(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """An anonymous user's events, page views and memberships move into the userId's user."""
    await apply({"type": "page", "userId": "u1"})
    await apply(
        {"type": "page", "anonymousId": "a1"},
        {"type": "track", "anonymousId": "a1", "event": "Clicked"},
        {"type": "group", "anonymousId": "a1", "groupId": "g1"},
    )
    await apply({"type": "identify", "userId": "u1", "anonymousId": "a1"})
    [user] = await users(db, workspace, "page_views")
    owners = await db.fetch(
        "SELECT user_pk FROM events WHERE workspace_id = $1 UNION ALL "
        "SELECT user_pk FROM page_views WHERE workspace_id = $1 UNION ALL "
        "SELECT user_pk FROM account_users WHERE workspace_id = $1 UNION ALL "
        "SELECT user_pk FROM anonymous_ids WHERE workspace_id = $1",
        workspace.workspace_id,
    )
    assert (user["user_id"], user["page_views"]) == ("u1", 2)
    assert {o["user_pk"] for o in owners} == {user["id"]}
    assert len(owners) == 5


async def test_users_with_different_user_ids_are_never_merged(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """An anonymous id already attached to u1 does not pull u2 into u1."""
    await apply({"type": "identify", "userId": "u1", "anonymousId": "a1"})
    await apply({"type": "identify", "userId": "u2", "anonymousId": "a1"})
    assert [u["user_id"] for u in await users(db, workspace)] == ["u1", "u2"]


async def test_alias_merges_previous_id_into_user(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """alias(previousId -> userId) follows the same rule as identify with both ids."""
    await apply({"type": "track", "anonymousId": "anon-9", "event": "Viewed"})
    await apply({"type": "identify", "userId": "u9", "traits": {"email": "x@initech.com"}})
    await apply({"type": "alias", "previousId": "anon-9", "userId": "u9"})
    [user] = await users(db, workspace)
    events = await db.fetch(
        "SELECT user_pk FROM events WHERE workspace_id = $1", workspace.workspace_id
    )
    assert (user["user_id"], [e["user_pk"] for e in events]) == ("u9", [user["id"]])


async def test_free_email_users_are_ignored_until_a_work_email(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """With blocking on, a gmail identify and the calls after it are ignored (its group call
    makes the user no member; the account it names is the workspace's, and stays, as it
    would for a deleted user); a work email lets the identity in."""
    await create_key(db, workspace.workspace, workspace.connector, block_free_email=True)
    blocked = await apply(
        {"type": "identify", "userId": "u1", "traits": {"email": "j@gmail.com"}},
        {"type": "track", "userId": "u1", "event": "E"},
        {"type": "group", "userId": "u1", "groupId": "g1", "traits": {"name": "Initech"}},
    )
    nothing = await users(db, workspace)
    assert blocked.calls[("group", "blocked")] == 1
    assert await count(db, "accounts", workspace) == 1
    assert await count(db, "account_users", workspace) == 0
    await apply({"type": "identify", "userId": "u1", "traits": {"email": "j@initech.com"}})
    await apply({"type": "track", "userId": "u1", "event": "E2"})
    after = await users(db, workspace)
    assert (blocked.calls[("identify", "blocked")], blocked.calls[("track", "blocked")]) == (1, 1)
    assert nothing == []
    assert [u["email"] for u in after] == ["j@initech.com"]
    assert await count(db, "events", workspace) == 1


async def test_free_email_is_kept_when_blocking_is_off(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """Without blocking, a gmail user is an ordinary user."""
    await apply({"type": "identify", "userId": "u1", "traits": {"email": "j@gmail.com"}})
    assert [u["email"] for u in await users(db, workspace)] == ["j@gmail.com"]


async def test_delete_removes_user_and_older_calls_do_not_bring_it_back(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """delete removes the user and what hangs off it; an older call arriving later is ignored."""
    await apply(
        {
            "type": "identify",
            "userId": "u1",
            "anonymousId": "a1",
            "timestamp": "2026-01-01T00:00:00Z",
        },
        {"type": "page", "userId": "u1", "timestamp": "2026-01-01T00:01:00Z"},
        {"type": "group", "userId": "u1", "groupId": "g", "timestamp": "2026-01-01T00:02:00Z"},
    )
    await apply(
        {
            "type": "delete",
            "userId": "u1",
            "timestamp": "2026-01-02T00:00:00Z",
            "receivedAt": "2026-01-02T00:00:00.000Z",
        }
    )
    gone = [
        await count(db, t, workspace)
        for t in ("users", "page_views", "account_users", "anonymous_ids")
    ]
    after = "2026-01-03T00:00:00.000Z"  # received after the delete
    late = await apply(
        {"type": "track", "userId": "u1", "event": "Old", "timestamp": "2026-01-01T12:00:00Z",
         "receivedAt": after},
        {"type": "page", "anonymousId": "a1", "timestamp": "2026-01-01T12:00:00Z",
         "receivedAt": after},
    )  # fmt: skip
    await apply(
        {"type": "track", "userId": "u1", "event": "New", "timestamp": "2026-01-03T00:00:00Z",
         "receivedAt": after}
    )  # fmt: skip
    assert gone == [0, 0, 0, 0]
    assert (late.calls[("track", "deleted")], late.calls[("page", "deleted")]) == (1, 1)
    assert [
        e["name"]
        for e in await db.fetch(
            "SELECT name FROM events WHERE workspace_id = $1", workspace.workspace_id
        )
    ] == ["New"]


async def test_each_message_id_is_applied_once(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """The same messageId in one batch, and again in a later batch, counts once."""
    page = {"type": "page", "userId": "u1", "messageId": "dup-1"}
    await apply(page, page)
    outcome = await apply(page)
    [user] = await users(db, workspace, "page_views")
    assert user["page_views"] == 1
    assert outcome.calls[("page", "duplicate")] == 1
    assert await count(db, "page_views", workspace) == 1


async def test_newer_value_wins_whatever_the_order(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """An older identify processed after a newer one does not overwrite its email."""
    await apply(
        {
            "type": "identify",
            "userId": "u1",
            "traits": {"email": "new@initech.com"},
            "timestamp": "2026-02-01T00:00:00Z",
        }
    )
    await apply(
        {
            "type": "identify",
            "userId": "u1",
            "traits": {"email": "old@initech.com"},
            "timestamp": "2026-01-01T00:00:00Z",
        }
    )
    assert [u["email"] for u in await users(db, workspace)] == ["new@initech.com"]


async def test_workspaces_never_see_each_other(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """The same userId in two workspaces is two users."""
    other = await create_key(db, f"{workspace.workspace}-other")
    await apply({"type": "identify", "userId": "same", "traits": {"email": "a@initech.com"}})
    from tests.support.calls import call
    from worker.unit_of_work import apply_calls

    await apply_calls(
        db, [call(other, type="identify", userId="same", traits={"email": "b@initech.com"})]
    )
    rows = await db.fetch(
        "SELECT workspace_id, email FROM users WHERE user_id = 'same' "
        "AND workspace_id = ANY($1) ORDER BY workspace_id",
        [workspace.workspace_id, other.workspace_id],
    )
    assert [tuple(r) for r in rows] == [
        (workspace.workspace_id, "a@initech.com"),
        (other.workspace_id, "b@initech.com"),
    ]


async def test_reserved_traits_are_defined_with_their_spec_types(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """createdAt and created_at are one datetime attribute; age and logins numbers."""
    await apply(
        {"type": "identify", "userId": "u1", "traits": {"createdAt": "2020-01-01T10:00:00Z"}},
        {"type": "identify", "userId": "u2", "traits": {"created_at": "2021-02-03", "age": "42"}},
    )
    types = await db.fetch(
        "SELECT name, type FROM attribute_definitions WHERE workspace_id = $1 ORDER BY name",
        workspace.workspace_id,
    )
    traits = {u["user_id"]: u["traits"] for u in await users(db, workspace, "traits")}
    assert [tuple(t) for t in types] == [("age", "number"), ("created_at", "datetime")]
    assert traits == {
        "u1": {"created_at": "2020-01-01T10:00:00Z"},
        "u2": {"created_at": "2021-02-03T00:00:00Z", "age": 42},
    }


async def test_one_huge_call_cannot_define_more_attributes_than_the_cap(
    pool: asyncpg.Pool, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """3,800 trait names in one call, with a cap of 1,000: 1,000 definitions, the rest
    dropped with a warning."""
    from tests.support.calls import call
    from worker.rules.state import Limits
    from worker.unit_of_work import apply_calls

    traits = {f"t{i:04d}": i for i in range(3800)}
    async with pool.acquire() as conn:
        outcome = await apply_calls(
            conn, [call(workspace, type="identify", userId="u1", traits=traits)], Limits()
        )
    defined = await count(db, "attribute_definitions", workspace)
    [user] = await users(db, workspace, "traits")
    assert defined == 1000
    assert len(user["traits"]) == 1000
    assert outcome.warnings["attribute_cap_reached"] == 2800


async def test_trait_computed_sets_the_trait_it_names(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    await apply(
        {
            "type": "track",
            "userId": "u1",
            "event": "Trait Computed",
            "properties": {"trait_key": "lifetime_value", "lifetime_value": "120"},
            "context": {"personas": {"computation_class": "trait", "computation_id": "tra_1"}},
        }
    )
    [user] = await users(db, workspace, "traits")
    assert user["traits"] == {"lifetime_value": "120"}


async def test_a_server_side_call_does_not_move_seen_times(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    await apply(
        {"type": "track", "userId": "u1", "event": "E", "timestamp": "2026-01-01T00:00:00Z"}
    )
    await apply(
        {"type": "track", "userId": "u1", "event": "Synced", "context": {"active": False},
         "timestamp": "2026-03-01T00:00:00Z"}
    )  # fmt: skip
    [user] = await users(db, workspace, "first_seen_at", "last_seen_at")
    assert (user["first_seen_at"].month, user["last_seen_at"].month) == (1, 1)
