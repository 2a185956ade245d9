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
