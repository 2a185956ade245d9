"""Privacy requests: suppression reaching every receiver within 5 seconds, and the
runbook's "delete and suppress a user" done end to end from its make targets."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import aiohttp
import asyncpg
import pytest

from ops import privacy
from ops.keys import CreatedKey
from sextant.settings import Settings
from tests.support.fixture_types import Run
from tests.support.helpers import basic_auth, eventually
from tests.support.receivers import receivers
from tests.support.sender import kafka_messages, send
from worker.consumer import Worker

pytestmark = pytest.mark.slow


async def test_suppression_reaches_two_receivers_within_5_seconds(
    settings: Settings, http: aiohttp.ClientSession, workspace: CreatedKey, db: asyncpg.Connection
) -> None:
    """Suppressed: both receivers skip the userId's calls (never forwarded), but not its
    delete; unsuppressed: they take its calls again."""
    auth = basic_auth(workspace.api_key)
    track = {"userId": "u-private", "event": "E"}
    async with receivers(settings, 2) as urls:
        await privacy.suppress(db, workspace.workspace, "u-private")
        started = time.monotonic()
        for url in urls:

            async def skipped(url: str = url) -> bool:
                answer = await send(http, f"{url}/v1/track", track, headers=auth)
                return answer.body["skipped"] == 1

            await eventually(skipped, timeout=5)
        took = time.monotonic() - started
        delete = await send(
            http, f"{urls[0]}/segment", {"type": "delete", "userId": "u-private"}, headers=auth
        )
        await privacy.unsuppress(db, workspace.workspace, "u-private")

        async def taken_again() -> bool:
            answer = await send(http, f"{urls[1]}/v1/track", track, headers=auth)
            return answer.body["accepted"] == 1

        await eventually(taken_again, timeout=5)
    records = await kafka_messages(settings, 1)
    assert took < 5
    assert delete.body["accepted"] == 1
    assert sorted(m["type"] for _, m in records)[0] == "delete"
    assert {m["type"] for _, m in records} <= {"delete", "track"}


async def test_the_privacy_runbook_from_its_make_targets(
    receiver: str,
    http: aiohttp.ClientSession,
    workspace: CreatedKey,
    db: asyncpg.Connection,
    make: Run,
    start_worker: Callable[[], Awaitable[Worker]],
) -> None:
    """make suppress, then make forget: the user and what was received for it are gone, new
    calls are skipped; make unsuppress: a new call creates the user afresh."""
    await start_worker()
    auth = basic_auth(workspace.api_key)
    ws, user = workspace.workspace, "p1"
    await send(http, f"{receiver}/v1/identify", {"userId": user, "anonymousId": "pa1",
               "traits": {"email": "p1@initech.com"}}, headers=auth)  # fmt: skip
    await send(http, f"{receiver}/v1/track", {"userId": user, "event": "Viewed"}, headers=auth)

    async def count(sql: str) -> int:
        return int(await db.fetchval(sql, workspace.workspace_id))

    users = "SELECT count(*) FROM users WHERE workspace_id = $1 AND user_id = 'p1'"
    events = "SELECT count(*) FROM events WHERE workspace_id = $1"

    async def applied() -> bool:
        return await count(users) == 1 and await count(events) == 1

    await eventually(applied)
    assert make("suppress", f"WORKSPACE={ws}", f"USER_ID={user}").returncode == 0

    async def skipped() -> bool:
        answer = await send(http, f"{receiver}/v1/track", {"userId": user, "event": "Again"},
                            headers=auth)  # fmt: skip
        return answer.body["skipped"] == 1

    await eventually(skipped, timeout=5)
    forgot = make("forget", f"WORKSPACE={ws}", f"USER_ID={user}")
    assert forgot.returncode == 0, forgot.stderr

    async def gone() -> bool:
        return await count(users) == 0 and await count(events) == 0

    await eventually(gone)
    anonymous = await count("SELECT count(*) FROM anonymous_ids WHERE workspace_id = $1")
    listed = make("suppressions", f"WORKSPACE={ws}")
    assert anonymous == 0
    assert user in listed.stdout

    assert make("unsuppress", f"WORKSPACE={ws}", f"USER_ID={user}").returncode == 0

    async def back() -> bool:
        await send(http, f"{receiver}/v1/identify", {"userId": user, "traits": {"plan": "x"}},
                   headers=auth)  # fmt: skip
        return await count(users) == 1

    await eventually(back, timeout=15)
