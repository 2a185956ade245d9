"""Engage's email-only calls (docs/calls.md, "Engage"), on the real Postgres: Engage sends
one call per identifier of a profile, and an email is one. Such a call lands on the user that email
identifies, or on a user known only by it, which an identify with a userId and the same
email merges into the userId user, whichever comes first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg

from ops.keys import CreatedKey
from tests.support.fixture_types import Apply

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "segment"


def engage_for_email(email: str, at: str) -> dict[str, Any]:
    """Segment's own Audience Entered example (engage_audience_track.json) as Engage sends
    it for the profile's email: no userId, the email in context.traits."""
    message = json.loads((FIXTURES / "engage_audience_track.json").read_text())
    del message["userId"]
    message["context"]["traits"] = {"email": email}
    message["context"]["personas"]["computation_key"] = "first_time_shopper"
    return {**message, "timestamp": at}


IDENTIFY = {"type": "identify", "userId": "u123", "traits": {"email": "Jo@Initech.com"},
            "timestamp": "2026-03-01T09:00:00Z"}  # fmt: skip

PEOPLE = (
    "SELECT u.user_id, u.traits, "
    "(SELECT array_agg(e.email) FROM email_identities e "
    "  WHERE e.workspace_id = u.workspace_id AND e.user_pk = u.id) AS emails, "
    "(SELECT array_agg(v.name) FROM events v "
    "  WHERE v.workspace_id = u.workspace_id AND v.user_pk = u.id) AS events "
    "FROM users u WHERE u.workspace_id = $1"
)


async def people(db: asyncpg.Connection, ws: CreatedKey) -> list[dict[str, Any]]:
    return [dict(r) for r in await db.fetch(PEOPLE, ws.workspace_id)]


async def test_an_email_only_call_first_is_merged_when_the_identify_joins_the_email(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    await apply(engage_for_email("jo@initech.com", "2026-03-01T10:00:00Z"))
    [alone] = await people(db, workspace)
    assert alone["user_id"] is None
    assert alone["emails"] == ["jo@initech.com"]
    await apply(IDENTIFY)
    assert await people(db, workspace) == [
        {"user_id": "u123", "traits": {"first_time_shopper": True},
         "emails": ["jo@initech.com"], "events": ["Audience Entered"]}
    ]  # fmt: skip


async def test_an_email_only_call_after_the_identify_lands_on_the_userid_user(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    await apply(IDENTIFY)
    await apply(engage_for_email(" JO@initech.com", "2026-03-01T10:00:00Z"))
    audiences = await db.fetch(
        "SELECT audience_key, member FROM audience_memberships WHERE workspace_id = $1",
        workspace.workspace_id,
    )
    assert await people(db, workspace) == [
        {"user_id": "u123", "traits": {"first_time_shopper": True},
         "emails": ["jo@initech.com"], "events": ["Audience Entered"]}
    ]  # fmt: skip
    assert [tuple(r) for r in audiences] == [("first_time_shopper", True)]


async def test_an_email_claimed_by_two_userids_stays_with_the_first(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    """Users with different userIds are never merged, whatever they share."""
    await apply(IDENTIFY)
    outcome = await apply({**IDENTIFY, "userId": "u456", "timestamp": "2026-03-01T09:30:00Z"})
    await apply(engage_for_email("jo@initech.com", "2026-03-01T10:00:00Z"))
    found = {p["user_id"]: p for p in await people(db, workspace)}
    assert found["u123"]["emails"] == ["jo@initech.com"]
    assert found["u123"]["events"] == ["Audience Entered"]
    assert found["u456"]["emails"] is None
    assert outcome.warnings["merge_refused"] == 1


async def test_a_deleted_users_email_does_not_bring_older_engage_calls_back(
    apply: Apply, db: asyncpg.Connection, workspace: CreatedKey
) -> None:
    await apply(IDENTIFY)
    await apply({"type": "delete", "userId": "u123", "timestamp": "2026-03-01T11:00:00Z",
                 "receivedAt": "2026-03-01T11:00:00.000Z"})  # fmt: skip
    await apply(engage_for_email("jo@initech.com", "2026-03-01T10:00:00Z"))
    assert await people(db, workspace) == []
