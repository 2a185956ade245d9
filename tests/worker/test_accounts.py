"""Accounts from every call (Segment's B2B spec), on the real Postgres: an identify's
company, any call's context.groupId, and the B2B SaaS spec's own events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg

from ops.keys import CreatedKey
from tests.support.fixture_types import Apply

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "segment"


async def rows(db: asyncpg.Connection, sql: str, ws: CreatedKey) -> list[dict[str, Any]]:
    return [dict(r) for r in await db.fetch(sql, ws.workspace_id)]


async def test_an_identifys_company_makes_the_account_and_the_membership(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    await apply(
        {
            "type": "identify",
            "userId": "co-1",
            "traits": {"company": {"id": "acme-co", "name": "Acme", "plan": "pro"}},
        }
    )
    accounts = await rows(db, "SELECT group_id, name, plan FROM accounts WHERE workspace_id = $1",
                          workspace)  # fmt: skip
    members = await rows(
        db,
        "SELECT a.group_id, u.user_id, u.traits FROM account_users m "
        "JOIN accounts a ON a.workspace_id = m.workspace_id AND a.id = m.account_pk "
        "JOIN users u ON u.workspace_id = m.workspace_id AND u.id = m.user_pk "
        "WHERE m.workspace_id = $1",
        workspace,
    )
    assert accounts == [{"group_id": "acme-co", "name": "Acme", "plan": "pro"}]
    assert members == [{"group_id": "acme-co", "user_id": "co-1", "traits": {}}]


async def test_context_group_id_links_events_and_page_views_to_their_account(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    await apply(
        {"type": "track", "userId": "u1", "event": "Signed Up", "context": {"groupId": "g-7"}},
        {"type": "page", "userId": "u1", "name": "Home", "context": {"groupId": "g-7"}},
        {"type": "track", "userId": "u1", "event": "Alone"},
    )
    linked = await rows(
        db,
        "SELECT e.name, a.group_id FROM events e LEFT JOIN accounts a "
        "ON a.workspace_id = e.workspace_id AND a.id = e.account_pk "
        "WHERE e.workspace_id = $1 ORDER BY e.name",
        workspace,
    )
    views = await rows(
        db,
        "SELECT a.group_id FROM page_views v JOIN accounts a "
        "ON a.workspace_id = v.workspace_id AND a.id = v.account_pk WHERE v.workspace_id = $1",
        workspace,
    )
    members = await rows(db, "SELECT count(*) AS n FROM account_users WHERE workspace_id = $1",
                         workspace)  # fmt: skip
    assert linked == [{"name": "Alone", "group_id": None}, {"name": "Signed Up", "group_id": "g-7"}]
    assert views == [{"group_id": "g-7"}]
    assert members == [{"n": 1}]


async def test_the_b2b_specs_own_events_land_on_their_account(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """Account Created, Account Added User, Signed Up and Trial Started as Segment's docs
    show them: each an event on the account of its context.groupId."""
    names = ["b2b_account_created", "b2b_account_added_user", "b2b_signed_up", "b2b_trial_started"]
    messages = [json.loads((FIXTURES / f"{n}.json").read_text()) for n in names]
    await apply(*messages)
    events = await rows(
        db,
        "SELECT e.name, a.group_id FROM events e JOIN accounts a "
        "ON a.workspace_id = e.workspace_id AND a.id = e.account_pk WHERE e.workspace_id = $1",
        workspace,
    )
    groups = {m["context"]["groupId"] for m in messages}
    named = await rows(db, "SELECT group_id, name FROM accounts WHERE workspace_id = $1",
                       workspace)  # fmt: skip
    assert sorted(e["name"] for e in events) == sorted(m["event"] for m in messages)
    assert {e["group_id"] for e in events} == groups
    assert named == [{"group_id": "acct_123", "name": "Initech"}]


def spec(name: str, at: str, **changes: Any) -> dict[str, Any]:
    """One of the B2B spec's example calls from Segment's docs, at a call time."""
    return {**json.loads((FIXTURES / f"{name}.json").read_text()), "timestamp": at, **changes}


MEMBERS = (
    "SELECT a.group_id, u.user_id FROM account_users m "
    "JOIN accounts a ON a.workspace_id = m.workspace_id AND a.id = m.account_pk "
    "JOIN users u ON u.workspace_id = m.workspace_id AND u.id = m.user_pk "
    "WHERE m.workspace_id = $1"
)
EVENTS = (
    "SELECT e.name, a.group_id FROM events e LEFT JOIN accounts a "
    "ON a.workspace_id = e.workspace_id AND a.id = e.account_pk "
    "WHERE e.workspace_id = $1 ORDER BY e.occurred_at"
)


async def test_account_removed_user_ends_the_membership_and_older_calls_do_not_restore_it(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    await apply(spec("b2b_account_added_user", "2026-03-01T10:00:00Z"))
    await apply(spec("b2b_account_removed_user", "2026-03-01T11:00:00Z"))
    assert await rows(db, MEMBERS, workspace) == []
    # Segment retried an older call: it arrives after the removal and changes nothing.
    await apply(spec("b2b_signed_in", "2026-03-01T10:30:00Z", userId="019mr8mf4r"))
    assert await rows(db, MEMBERS, workspace) == []
    # The event itself stays on the account; a newer call makes the user a member again.
    events = await rows(db, EVENTS, workspace)
    assert [e["group_id"] for e in events] == ["acct_123"] * 3
    await apply(spec("b2b_account_added_user", "2026-03-01T12:00:00Z"))
    assert await rows(db, MEMBERS, workspace) == [{"group_id": "acct_123", "user_id": "019mr8mf4r"}]


async def test_account_deleted_removes_the_account_and_keeps_its_events_unlinked(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    await apply(
        spec("b2b_account_created", "2026-03-01T10:00:00Z"),
        {"type": "group", "userId": "u2", "groupId": "acct_123", "traits": {"plan": "pro"},
         "timestamp": "2026-03-01T10:05:00Z"},
    )  # fmt: skip
    await apply(spec("b2b_account_deleted", "2026-03-01T11:00:00Z"))
    accounts = await rows(db, "SELECT group_id FROM accounts WHERE workspace_id = $1", workspace)
    assert accounts == []
    assert await rows(db, MEMBERS, workspace) == []
    events = await rows(db, EVENTS, workspace)
    assert events == [
        {"name": "Account Created", "group_id": None},
        {"name": "Account Deleted", "group_id": None},
    ]
    # An older group call arriving late does not bring the account back; a newer one does,
    # with only what is newer than the delete.
    await apply(
        {"type": "group", "userId": "u3", "groupId": "acct_123", "traits": {"plan": "free"},
         "timestamp": "2026-03-01T10:30:00Z"},
    )  # fmt: skip
    assert await rows(db, "SELECT group_id FROM accounts WHERE workspace_id = $1", workspace) == []
    await apply(
        {"type": "group", "userId": "u4", "groupId": "acct_123", "traits": {"seats": 4},
         "timestamp": "2026-03-01T12:00:00Z"},
    )  # fmt: skip
    back = await rows(db, "SELECT name, plan, traits FROM accounts WHERE workspace_id = $1",
                      workspace)  # fmt: skip
    assert back == [{"name": None, "plan": None, "traits": {"seats": "4"}}]
    assert await rows(db, MEMBERS, workspace) == [{"group_id": "acct_123", "user_id": "u4"}]


async def test_a_delete_older_than_calls_already_applied_keeps_only_what_is_newer(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """The delete arrives last but is older than some calls: the account stays, with what
    those newer calls wrote, and older events let go of it."""
    await apply(
        {"type": "group", "userId": "u1", "groupId": "g", "traits": {"name": "Old", "plan": "a"},
         "timestamp": "2026-03-01T10:00:00Z"},
        {"type": "group", "userId": "u2", "groupId": "g", "traits": {"plan": "b"},
         "timestamp": "2026-03-01T12:00:00Z"},
        {"type": "track", "userId": "u1", "event": "Early", "context": {"groupId": "g"},
         "timestamp": "2026-03-01T10:10:00Z"},
        {"type": "track", "userId": "u2", "event": "Late", "context": {"groupId": "g"},
         "timestamp": "2026-03-01T12:10:00Z"},
    )  # fmt: skip
    await apply(
        {"type": "track", "userId": "u9", "event": "Account Deleted",
         "context": {"groupId": "g"}, "timestamp": "2026-03-01T11:00:00Z"}
    )  # fmt: skip
    account = await rows(db, "SELECT name, plan FROM accounts WHERE workspace_id = $1", workspace)
    assert account == [{"name": None, "plan": "b"}]
    assert await rows(db, MEMBERS, workspace) == [{"group_id": "g", "user_id": "u2"}]
    events = await rows(db, EVENTS, workspace)
    assert [(e["name"], e["group_id"]) for e in events] == [
        ("Early", None),
        ("Account Deleted", None),
        ("Late", "g"),
    ]


async def test_an_engage_account_audience_is_a_boolean_trait_and_a_membership(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    personas = {
        "computation_class": "audience",
        "computation_key": "high_value_accounts",
        "computation_id": "12345",  # the door makes a number text (tests/unit/test_door.py)
        "space_id": "spa_1",
    }
    entered = {"type": "group", "userId": "u1", "groupId": "g1",
               "traits": {"high_value_accounts": "true"}, "context": {"personas": personas},
               "timestamp": "2026-03-01T10:00:00Z"}  # fmt: skip
    exited = {**entered, "traits": {"high_value_accounts": False},
              "timestamp": "2026-03-01T11:00:00Z"}  # fmt: skip
    await apply(exited)
    await apply(entered)  # older, arriving later: the account stays out
    audiences = await rows(
        db,
        "SELECT audience_key, member, computation_class, computation_id, space_id "
        "FROM account_audience_memberships WHERE workspace_id = $1",
        workspace,
    )
    traits = await rows(db, "SELECT traits FROM accounts WHERE workspace_id = $1", workspace)
    defined = await rows(
        db,
        "SELECT type FROM attribute_definitions WHERE workspace_id = $1 AND entity = 'account'",
        workspace,
    )
    assert audiences == [
        {"audience_key": "high_value_accounts", "member": False, "computation_class": "audience",
         "computation_id": "12345", "space_id": "spa_1"}
    ]  # fmt: skip
    assert traits == [{"traits": {"high_value_accounts": False}}]
    assert defined == [{"type": "boolean"}]
