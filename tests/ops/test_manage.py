"""The management API through HTTP against the real Postgres: every route, its errors, its
pages, and the token on every route."""

from __future__ import annotations

import re
import uuid

import asyncpg
import pytest

from ops.manage.routes import ROUTES
from tests.support.fixture_types import Run
from tests.support.manage import Manage

pytestmark = pytest.mark.slow


def fill(path: str, **names: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: names.get(m[1], "x"), path)


EVERY_ROUTE = [(r.method, r.path) for r in ROUTES] + [("GET", "/manage/openapi.json")]


@pytest.mark.parametrize(("method", "path"), EVERY_ROUTE)
@pytest.mark.parametrize("token", [None, "wrong", "test-manage-token-012345678", ""])
async def test_every_route_needs_the_token(
    manage: Manage, method: str, path: str, token: str | None
) -> None:
    status, answer = await manage.call(method, fill(path), {}, token=token)
    assert status == 401
    assert "Bearer" in answer["message"]


async def test_the_openapi_document_lists_every_route(manage: Manage) -> None:
    status, document = await manage.call("GET", "/manage/openapi.json")
    assert status == 200
    listed = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    assert listed == {(r.method, r.path) for r in ROUTES}
    assert "ConnectorCreate" in document["components"]["schemas"]


async def workspace(manage: Manage) -> str:
    name = f"ws-{uuid.uuid4().hex[:10]}"
    assert (await manage.call("POST", "/manage/v1/workspaces", {"name": name}))[0] == 201
    return name


async def test_workspaces_connectors_and_keys(manage: Manage, db: asyncpg.Connection) -> None:
    ws = await workspace(manage)
    base = f"/manage/v1/workspaces/{ws}"
    again = await manage.call("POST", "/manage/v1/workspaces", {"name": ws})
    created = await manage.call("POST", f"{base}/connectors", {
        "name": "web", "block_free_email_users": True, "trusted_domains": ["Initech.com"],
        "shared_secret": "s3cret-s3cret"})  # fmt: skip
    duplicate = await manage.call("POST", f"{base}/connectors", {"name": "web"})
    changed = await manage.call("PATCH", f"{base}/connectors/web", {"trusted_domains": []})
    missing_connector = await manage.call("PATCH", f"{base}/connectors/nope", {})
    key = await manage.call("POST", f"{base}/keys", {"connector": "web"})
    no_connector_key = await manage.call("POST", f"{base}/keys", {"connector": "nope"})
    listed = await manage.call("GET", f"{base}/keys")
    connectors = await manage.call("GET", f"{base}/connectors")
    revoked = await manage.call("DELETE", f"{base}/keys/{key[1]['prefix']}")
    revoked_again = await manage.call("DELETE", f"{base}/keys/{key[1]['prefix']}")
    unknown = await manage.call("GET", "/manage/v1/workspaces/no-such-ws/keys")
    assert again[0] == 409
    assert created == (201, {"name": "web", "block_free_email_users": True,
                             "trusted_domains": ["initech.com"], "signed": True,
                             "created_at": created[1]["created_at"]})  # fmt: skip
    assert duplicate[0] == 409
    assert changed[0] == 200
    assert changed[1]["trusted_domains"] == []
    assert changed[1]["block_free_email_users"] is True  # left as it was
    assert missing_connector[0] == 404
    assert key[0] == 201
    assert key[1]["api_key"].startswith(key[1]["prefix"])
    assert no_connector_key[0] == 404
    assert [k["key_prefix"] for k in listed[1]["items"]] == [key[1]["prefix"]]
    assert key[1]["api_key"] not in str(listed[1])
    assert key[1]["api_key"] not in str(connectors[1])
    assert revoked == (200, {"revoked": key[1]["prefix"]})
    assert revoked_again[0] == 200  # revoking twice keeps the first time
    assert unknown[0] == 404
    assert "no-such-ws" in unknown[1]["message"]


async def test_bodies_are_checked_field_by_field(manage: Manage) -> None:
    ws = await workspace(manage)
    base = f"/manage/v1/workspaces/{ws}"
    answers = [
        await manage.call("POST", f"{base}/connectors", {"name": "c", "colour": "red"}),
        await manage.call("POST", f"{base}/connectors", {"name": 7}),
        await manage.call("POST", f"{base}/connectors", raw=b"{not json"),
        await manage.call(
            "POST", f"{base}/attributes", {"entity": "user", "name": "plan", "type": "colour"}
        ),
        await manage.call("PUT", f"{base}/limit", {"calls_per_second": -1}),
        await manage.call("GET", f"{base}/warnings?since=yesterday"),
        await manage.call("GET", f"{base}/warnings?limit=0"),
        await manage.call("GET", f"{base}/warnings?cursor=bm90LWEtY3Vyc29y"),
    ]
    assert [status for status, _ in answers] == [422] * len(answers)
    assert "colour" in answers[0][1]["message"]
    assert "name" in answers[1][1]["message"]


async def test_attributes_limits_and_lists(manage: Manage) -> None:
    ws = await workspace(manage)
    base = f"/manage/v1/workspaces/{ws}"
    defined = await manage.call("POST", f"{base}/attributes",
                                {"entity": "event", "event": "Order Completed",
                                 "name": "revenue", "type": "number"})  # fmt: skip
    attributes = await manage.call("GET", f"{base}/attributes")
    limit = await manage.call("PUT", f"{base}/limit", {"calls_per_second": 250})
    shown = await manage.call("GET", f"{base}/limit")
    default = await manage.call("PUT", f"{base}/limit", {"calls_per_second": 0})
    blocked = await manage.call("POST", f"{base}/blocked-identifiers", {"value": " Test-User "})
    built_in = await manage.call("POST", f"{base}/blocked-identifiers", {"value": "null"})
    values = await manage.call("GET", f"{base}/blocked-identifiers")
    unblocked = await manage.call("DELETE", f"{base}/blocked-identifiers/test-user")
    not_blocked = await manage.call("DELETE", f"{base}/blocked-identifiers/test-user")
    events = await manage.call("GET", f"{base}/event-definitions")
    assert defined[0] == 201
    assert [(a["entity"], a["event"], a["name"], a["type"]) for a in attributes[1]["items"]] == [
        ("event", "Order Completed", "revenue", "number")
    ]
    assert limit[1] == shown[1] == {"calls_per_second": 250, "default": False}
    assert default[1] == {"calls_per_second": 0, "default": True}
    assert blocked == (201, {"value": "test-user"})
    assert built_in[0] == 409
    assert [v["value"] for v in values[1]["items"]] == ["test-user"]
    assert unblocked[0] == 200
    assert not_blocked[0] == 404
    assert events == (200, {"items": [], "next_cursor": None})


async def test_pages_follow_the_cursor_newest_first(manage: Manage) -> None:
    ws = await workspace(manage)
    base = f"/manage/v1/workspaces/{ws}/suppressions"
    for i in range(5):
        assert (await manage.call("POST", base, {"user_id": f"u{i}"}))[0] == 201
    seen, cursor, pages = [], "", 0
    while cursor is not None:
        status, page = await manage.call("GET", f"{base}?limit=2&cursor={cursor}")
        assert status == 200
        assert len(page["items"]) <= 2
        seen += [item["value"] for item in page["items"]]
        cursor, pages = page["next_cursor"], pages + 1
    everything = await manage.call("GET", base)
    removed = await manage.call("DELETE", f"{base}/u2")
    removed_again = await manage.call("DELETE", f"{base}/u2")
    left = await manage.call("GET", base)
    assert removed[0] == 200
    assert removed_again[0] == 404
    assert [item["value"] for item in left[1]["items"]] == ["u4", "u3", "u1", "u0"]
    assert pages == 3
    assert seen == [item["value"] for item in everything[1]["items"]]
    assert sorted(seen) == [f"u{i}" for i in range(5)]
    assert seen[0] == "u4"  # newest first


async def test_unknown_routes_and_methods_answer_json(manage: Manage) -> None:
    missing = await manage.call("GET", "/manage/v1/nothing-here")
    method = await manage.call("DELETE", "/manage/v1/workspaces")
    assert missing[0] == 404
    assert method[0] == 405


def test_manage_refuses_to_start_without_a_token(sextant: Run) -> None:
    result = sextant("manage", MANAGE_TOKEN="")
    short = sextant("manage", MANAGE_TOKEN="short")
    assert result.returncode == 2
    assert "MANAGE_TOKEN is not set" in result.stderr
    assert short.returncode == 2
    assert "at least 16 characters" in short.stderr


async def test_workspaces_are_listed_newest_first(manage: Manage) -> None:
    first, second = await workspace(manage), await workspace(manage)
    status, page = await manage.call("GET", "/manage/v1/workspaces?limit=2")
    assert status == 200
    assert [w["name"] for w in page["items"]] == [second, first]
    assert page["items"][0]["calls_per_second"] is None
    assert page["next_cursor"] is not None
