"""A workspace's intake rate (contract 7.8) on real receivers and a real broker: 429 with
Retry-After before anything is forwarded, other workspaces untouched, receivers sharing
the rate, and changes reaching them within 5 seconds."""

from __future__ import annotations

import dataclasses
import re
import time
import uuid

import aiohttp
import asyncpg
import pytest

from ops.keys import CreatedKey, create_key
from ops.workspaces import set_intake_rate
from sextant.settings import Settings
from tests.support.helpers import basic_auth, eventually
from tests.support.receivers import receivers
from tests.support.sender import Answer, kafka_messages, send

pytestmark = pytest.mark.slow


def tracks(n: int, tag: str) -> dict[str, object]:
    return {
        "batch": [
            {"type": "track", "userId": "u1", "event": "E", "messageId": f"{tag}-{i}"}
            for i in range(n)
        ]
    }


async def metric(http: aiohttp.ClientSession, url: str, name: str) -> float:
    async with http.get(f"{url}/metrics") as response:
        text = await response.text()
    found = re.search(rf"^{re.escape(name)} ([\d.e+]+)$", text, re.MULTILINE)
    return float(found[1]) if found else 0.0


async def test_a_workspace_over_its_rate_gets_429_and_nothing_is_forwarded(
    settings: Settings, http: aiohttp.ClientSession, db: asyncpg.Connection
) -> None:
    limited = await create_key(db, f"ws-{uuid.uuid4().hex[:10]}")
    neighbour = await create_key(db, f"ws-{uuid.uuid4().hex[:10]}")
    fixed = dataclasses.replace(settings, receiver_replicas=1)
    async with receivers(fixed, 1) as (url,):
        await set_intake_rate(db, limited.workspace, 20)
        started = time.monotonic()
        answers: list[Answer] = []

        async def refused() -> bool:
            answer = await send(
                http,
                f"{url}/v1/batch",
                tracks(10, f"l{len(answers)}"),
                headers=basic_auth(limited.api_key),
            )
            answers.append(answer)
            return answer.status == 429

        await eventually(refused, timeout=5)
        took = time.monotonic() - started
        over = answers[-1]
        other = await send(
            http, f"{url}/v1/batch", tracks(300, "n"), headers=basic_auth(neighbour.api_key)
        )
        counted = await metric(
            http, url, f'sextant_calls_limited_total{{workspace="{limited.workspace_id}"}}'
        )
        await set_intake_rate(db, limited.workspace, 0)

        async def unlimited_again() -> bool:
            answer = await send(
                http,
                f"{url}/v1/batch",
                tracks(100, f"u{time.monotonic()}"),
                headers=basic_auth(limited.api_key),
            )
            return answer.status == 200

        await eventually(unlimited_again, timeout=5)
    assert took < 5
    assert "intake rate of 20 calls per second" in over.body["message"]
    assert over.body["success"] is False
    assert int(over.headers["Retry-After"]) >= 1
    assert other.status == 200
    assert other.body["accepted"] == 300
    assert counted >= 10
    refused_ids = {f"l{i}-{j}" for i, a in enumerate(answers) if a.status == 429 for j in range(10)}
    sent_ids = {m.get("messageId") for _, m in await kafka_messages(settings, 300)}
    assert refused_ids
    assert not refused_ids & sent_ids


async def test_two_receivers_count_each_other_and_each_admits_half(
    settings: Settings, http: aiohttp.ClientSession, workspace: CreatedKey, db: asyncpg.Connection
) -> None:
    """Counted, not configured: each of two receivers admits half of a 40 calls/s rate, so
    a burst at one of them gets about 20 calls through (a second's worth of its share)."""
    await set_intake_rate(db, workspace.workspace, 40)
    async with receivers(settings, 2) as urls:

        async def both_count_two() -> bool:
            seen = [await metric(http, u, "sextant_receivers_sharing_rates") for u in urls]
            return seen == [2.0, 2.0]

        await eventually(both_count_two, timeout=10)
        admitted = 0
        for i in range(40):
            answer = await send(
                http,
                f"{urls[0]}/v1/track",
                {"userId": "u1", "event": "E", "messageId": f"b{i}"},
                headers=basic_auth(workspace.api_key),
            )
            admitted += answer.status == 200
            assert answer.status in (200, 429)
    assert 20 <= admitted <= 24
