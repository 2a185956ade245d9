"""The README's walk-through of the management API, and its changes reaching a running
receiver within 5 seconds: a revoked key, a suppression, trusted domains and a limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from segment.analytics import Client

from tests.support.helpers import basic_auth, eventually
from tests.support.manage import Manage
from tests.support.sender import send
from worker.consumer import Worker

pytestmark = pytest.mark.slow


async def test_the_readme_walkthrough(
    manage: Manage,
    receiver: str,
    http: aiohttp.ClientSession,
    start_worker: Callable[[], Awaitable[Worker]],
) -> None:
    """A connector that blocks free email, a key, calls from Segment's Python library, the
    user and the warning through the API, then the key revoked: 403."""
    await start_worker()
    ws = "walkthrough-" + str(int(time.time() * 1000))
    base = f"/manage/v1/workspaces/{ws}"
    await manage.call("POST", "/manage/v1/workspaces", {"name": ws})
    await manage.call("POST", f"{base}/connectors", {"name": "web", "block_free_email_users": True})
    _, key = await manage.call("POST", f"{base}/keys", {"connector": "web"})
    errors: list[Any] = []
    client = Client(write_key=key["api_key"], host=receiver, max_retries=0,
                    upload_interval=0.05, on_error=lambda e, b: errors.append(e))  # fmt: skip

    def calls() -> None:
        client.identify("ada", {"email": "ada@initech.com", "plan": "pro"})
        client.track("ada", "Signed Up", {"plan": "pro"})
        client.identify("bob", {"email": "bob@gmail.com"})
        client.shutdown()

    await asyncio.to_thread(calls)

    async def applied() -> bool:
        status, user = await manage.call("GET", f"{base}/users/ada")
        return status == 200 and len(user["events"]) == 1

    await eventually(applied, timeout=30)
    _, ada = await manage.call("GET", f"{base}/users/ada")
    bob = await manage.call("GET", f"{base}/users/bob")
    _, warnings = await manage.call("GET", f"{base}/warnings?kind=free_email_blocked")
    _, later = await manage.call("GET", f"{base}/warnings?since=2999-01-01T00:00:00Z")
    _, events = await manage.call("GET", f"{base}/event-definitions")
    revoked = await manage.call("DELETE", f"{base}/keys/{key['prefix']}")
    started = time.monotonic()

    async def refused() -> bool:
        answer = await send(http, f"{receiver}/v1/track", {"userId": "ada", "event": "E"},
                            headers=basic_auth(key["api_key"]))  # fmt: skip
        return answer.status == 403

    await eventually(refused, timeout=5)
    assert errors == []
    assert ada["profile"]["email"] == "ada@initech.com"
    assert ada["profile"]["traits"] == {"plan": "pro"}
    assert [e["name"] for e in ada["events"]] == ["Signed Up"]
    assert bob[0] == 404
    assert [w["kind"] for w in warnings["items"]] == ["free_email_blocked"]
    assert later["items"] == []
    assert [e["name"] for e in events["items"]] == ["Signed Up"]
    assert revoked[0] == 200
    assert time.monotonic() - started < 5


async def test_changes_reach_the_receiver_within_5_seconds(
    manage: Manage, receiver: str, http: aiohttp.ClientSession
) -> None:
    ws = "effects-" + str(int(time.time() * 1000))
    base = f"/manage/v1/workspaces/{ws}"
    await manage.call("POST", "/manage/v1/workspaces", {"name": ws})
    await manage.call("POST", f"{base}/connectors", {"name": "web"})
    _, key = await manage.call("POST", f"{base}/keys", {"connector": "web"})
    auth = basic_auth(key["api_key"])
    url = f"{receiver}/v1/track"
    took: dict[str, float] = {}

    async def within_5_seconds(name: str, check: Callable[[], Awaitable[bool]]) -> None:
        started = time.monotonic()
        await eventually(check, timeout=5)
        took[name] = time.monotonic() - started

    await manage.call("POST", f"{base}/suppressions", {"user_id": "quiet"})

    async def skipped() -> bool:
        answer = await send(http, url, {"userId": "quiet", "event": "E"}, headers=auth)
        return answer.body.get("skipped") == 1

    await within_5_seconds("suppression", skipped)
    await manage.call("PATCH", f"{base}/connectors/web", {"trusted_domains": ["initech.com"]})

    async def origin_refused() -> bool:
        headers = {**auth, "Origin": "https://evil.example"}
        return (await send(http, url, {"userId": "u", "event": "E"}, headers=headers)).status == 403

    await within_5_seconds("trusted domains", origin_refused)
    await manage.call("PUT", f"{base}/limit", {"calls_per_second": 1})

    async def limited() -> bool:
        return (await send(http, url, {"userId": "u", "event": "E"}, headers=auth)).status == 429

    await within_5_seconds("limit", limited)
    assert set(took) == {"suppression", "trusted domains", "limit"}
    assert max(took.values()) < 5
