"""When the broker does not acknowledge: 503 with Retry-After, not ready, and no 200 is lost."""

from __future__ import annotations

import asyncio

import aiohttp

from ops.keys import CreatedKey
from tests.support.fixture_types import BrokerReceiver
from tests.support.helpers import basic_auth
from tests.support.sender import kafka_messages, send


async def _ready(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(f"{url}/readyz") as response:
        body = await response.json()
        assert body["ready"] is (response.status == 200)
        return response.status


async def _until_ready_is(http: aiohttp.ClientSession, url: str, status: int) -> None:
    """Poll /readyz until it answers `status`; the test's timeout bounds the wait."""
    while await _ready(http, url) != status:
        await asyncio.sleep(0.1)


async def test_frozen_broker_gives_503_and_not_ready_until_it_resumes(
    broker_receiver: BrokerReceiver, http: aiohttp.ClientSession, workspace: CreatedKey
) -> None:
    """With the broker frozen, calls get 503 + Retry-After and /readyz 503; after, 200 again."""
    url, broker = broker_receiver.url, broker_receiver.broker
    track = {"userId": "u1", "event": "E"}
    headers = basic_auth(workspace.api_key)
    assert (await send(http, f"{url}/v1/track", track, headers=headers)).status == 200
    assert await _ready(http, url) == 200

    broker.pause()
    refused = await send(http, f"{url}/v1/track", {**track, "messageId": "during"}, headers=headers)
    assert refused.status == 503
    assert int(refused.headers["Retry-After"]) > 0
    await _until_ready_is(http, url, 503)

    broker.resume()
    await _until_ready_is(http, url, 200)
    after = await send(http, f"{url}/v1/track", {**track, "messageId": "after"}, headers=headers)
    assert after.status == 200
    messages = [m["messageId"] for _, m in await kafka_messages(broker_receiver.settings, 2)]
    assert "after" in messages


async def test_stopped_broker_gives_503_until_one_is_back(
    broker_receiver: BrokerReceiver, http: aiohttp.ClientSession, workspace: CreatedKey
) -> None:
    """With the broker gone, calls get 503 + Retry-After and /readyz 503; a new broker heals."""
    url, broker = broker_receiver.url, broker_receiver.broker
    headers = basic_auth(workspace.api_key)
    broker.stop()
    answer = await send(http, f"{url}/v1/identify", {"userId": "u1"}, headers=headers)
    assert answer.status == 503
    assert int(answer.headers["Retry-After"]) > 0
    await _until_ready_is(http, url, 503)

    broker.start()  # same port, empty storage
    await _until_ready_is(http, url, 200)
    answer = await send(http, f"{url}/v1/identify", {"userId": "u1"}, headers=headers)
    assert answer.status == 200


SENDERS = 8
BATCHES_PER_SENDER = 40
CALLS_PER_BATCH = 5


async def test_no_call_answered_200_is_lost_when_the_broker_freezes_mid_stream(
    broker_receiver: BrokerReceiver, http: aiohttp.ClientSession, workspace: CreatedKey
) -> None:
    """Every call answered 200 is in Kafka, though the broker froze and thawed mid-stream."""
    url, broker = broker_receiver.url, broker_receiver.broker
    headers = basic_auth(workspace.api_key)
    accepted: list[str] = []
    statuses: list[int] = []
    halfway = asyncio.Event()
    resumed = asyncio.Event()
    accepted_after_resume = 0

    async def sender(n: int) -> None:
        nonlocal accepted_after_resume
        for b in range(BATCHES_PER_SENDER):
            ids = [f"s{n}-b{b}-c{c}" for c in range(CALLS_PER_BATCH)]
            batch = [
                {"type": "track", "userId": f"u{n}-{c}", "event": "Tick", "messageId": i}
                for c, i in enumerate(ids)
            ]
            answer = await send(http, f"{url}/v1/batch", {"batch": batch}, headers=headers)
            statuses.append(answer.status)
            if answer.status == 200:
                assert answer.body["accepted"] == CALLS_PER_BATCH
                accepted.extend(ids)
                accepted_after_resume += resumed.is_set()
            else:
                assert answer.status == 503
                assert "Retry-After" in answer.headers
            if b == BATCHES_PER_SENDER // 4:
                halfway.set()

    async def freeze_and_thaw() -> None:
        await halfway.wait()
        broker.pause()
        # Longer than the receiver's 1 s ack deadline: requests in flight must time out.
        await asyncio.sleep(2.0)
        broker.resume()
        resumed.set()

    await asyncio.gather(freeze_and_thaw(), *(sender(n) for n in range(SENDERS)))

    assert 503 in statuses
    assert accepted_after_resume > 0
    found = {
        m["messageId"] for _, m in await kafka_messages(broker_receiver.settings, len(accepted))
    }
    missing = set(accepted) - found
    assert not missing, f"{len(missing)} calls answered 200 are not in Kafka"
