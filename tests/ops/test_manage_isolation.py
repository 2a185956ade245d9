"""Nothing under one workspace's path reads or changes another's: every route is tried
under workspace A with the names of B's things, and B's rows must come out unchanged and
none of B's data may appear in the answer."""

from __future__ import annotations

import re
import uuid
from typing import Any

import asyncpg
import pytest

from ops.manage.routes import ROUTES
from tests.support.manage import Manage

pytestmark = pytest.mark.slow

# B's data that no answer under A may contain, unless the request named it itself.
SECRETS = ("B Secret Event", "b1@b-corp.example", "b_secret_attr", "b-warning-mid", "b-blocked-9")

_B_TABLES = {
    "connectors": "SELECT name, block_free_email_users, trusted_domains, shared_secret",
    "api_keys": "SELECT key_prefix, revoked_at",
    "attribute_definitions": "SELECT entity, event_name, name, type",
    "suppressions": "SELECT user_id",
    "blocked_identifiers": "SELECT value",
    "users": "SELECT user_id, email, traits",
    "events": "SELECT message_id, name",
    "ingestion_warnings": "SELECT kind, message_id",
    "event_definitions": "SELECT name",
}


async def snapshot(db: asyncpg.Connection, ws: int) -> dict[str, Any]:
    rows = {
        table: sorted(
            map(tuple, await db.fetch(f"{select} FROM {table} WHERE workspace_id = $1", ws))
        )
        for table, select in _B_TABLES.items()
    }
    rows["limit"] = await db.fetchval("SELECT calls_per_second FROM workspaces WHERE id = $1", ws)
    return rows


async def seed_b(manage: Manage, db: asyncpg.Connection, name: str) -> dict[str, str]:
    base = f"/manage/v1/workspaces/{name}"
    await manage.call("POST", "/manage/v1/workspaces", {"name": name})
    await manage.call("POST", f"{base}/connectors", {"name": "shared"})
    await manage.call(
        "POST", f"{base}/connectors", {"name": "b-only", "shared_secret": "b-secret-1"}
    )
    _, key = await manage.call("POST", f"{base}/keys", {"connector": "b-only"})
    await manage.call("POST", f"{base}/attributes",
                      {"entity": "user", "name": "b_secret_attr", "type": "string"})  # fmt: skip
    await manage.call("POST", f"{base}/suppressions", {"user_id": "b-user"})
    await manage.call("POST", f"{base}/blocked-identifiers", {"value": "b-blocked-9"})
    await manage.call("PUT", f"{base}/limit", {"calls_per_second": 77})
    ws = await db.fetchval("SELECT id FROM workspaces WHERE name = $1", name)
    user_pk = await db.fetchval(
        "INSERT INTO users (workspace_id, user_id, email) VALUES ($1, 'b-user1', "
        "'b1@b-corp.example') RETURNING id",
        ws,
    )
    await db.execute(
        "INSERT INTO events (workspace_id, message_id, user_pk, name, occurred_at, received_at) "
        "VALUES ($1, 'b-event-1', $2, 'B Secret Event', now(), now())",
        ws,
        user_pk,
    )
    await db.execute(
        "INSERT INTO event_definitions (workspace_id, name, first_seen_at, last_seen_at) "
        "VALUES ($1, 'B Secret Event', now(), now())",
        ws,
    )
    await db.execute(
        "INSERT INTO ingestion_warnings (workspace_id, kind, message_id, detail) "
        "VALUES ($1, 'field_dropped', 'b-warning-mid', '{}')",
        ws,
    )
    return {"ws": name, "prefix": key["prefix"], "id": str(ws)}


BODIES: dict[str, Any] = {
    "WorkspaceCreate": None,  # not under a workspace's path
    "ConnectorCreate": {"name": "b-only"},
    "ConnectorChange": {"block_free_email_users": True, "trusted_domains": ["evil.example"]},
    "KeyCreate": {"connector": "b-only"},
    "AttributeDefine": {"entity": "user", "name": "b_secret_attr", "type": "number"},
    "SuppressionCreate": {"user_id": "b-user"},
    "BlockedIdentifierCreate": {"value": "b-blocked-9"},
    "LimitSet": {"calls_per_second": 5},
}
UNDER_A_WORKSPACE = [r for r in ROUTES if "{ws}" in r.path]


@pytest.mark.parametrize("route", UNDER_A_WORKSPACE, ids=lambda r: f"{r.method} {r.path}")
async def test_a_route_under_one_workspace_never_reaches_another(
    manage: Manage, db: asyncpg.Connection, route: Any
) -> None:
    a = f"ws-a-{uuid.uuid4().hex[:8]}"
    await manage.call("POST", "/manage/v1/workspaces", {"name": a})
    await manage.call("POST", f"/manage/v1/workspaces/{a}/connectors", {"name": "shared"})
    b = await seed_b(manage, db, f"ws-b-{uuid.uuid4().hex[:8]}")
    before = await snapshot(db, int(b["id"]))
    names = {"ws": a, "name": "b-only", "prefix": b["prefix"], "user_id": "b-user1",
             "value": "b-blocked-9"}  # fmt: skip
    if route.path.endswith("/suppressions/{user_id}"):
        names["user_id"] = "b-user"
    path = re.sub(r"\{(\w+)\}", lambda m: names[m[1]], route.path)
    body = BODIES[route.body.__name__] if route.body is not None else None
    status, answer = await manage.call(route.method, path, body)
    after = await snapshot(db, int(b["id"]))
    assert status < 500
    assert after == before
    assert b["ws"] not in str(answer)
    asked = path + str(body)  # what the request itself names may be echoed back
    assert not [s for s in SECRETS if s in str(answer) and s not in asked]
    if route.method == "GET" and "items" in answer:
        assert status == 200
    if route.method in ("PATCH", "DELETE") or route.path.endswith("/users/{user_id}"):
        assert status == 404  # B's connector, key, suppression, value or user: not A's
