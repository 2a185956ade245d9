"""A revoked key is refused by a running receiver within 5 seconds."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import asyncpg

from ops.keys import revoke_key
from sextant.settings import Settings
from tests.support.fixture_types import MakeKey
from tests.support.helpers import basic_auth
from tests.support.sender import send

REVOCATION_BOUND_SECONDS = 5.0


async def test_revoked_key_is_refused_within_5_seconds(
    receiver: str, http: aiohttp.ClientSession, make_key: MakeKey, settings: Settings
) -> None:
    """A key in use and then revoked by an operator is answered 403 in under 5 seconds."""
    key = await make_key()
    body = {"userId": "u1", "event": "E"}
    first = await send(http, f"{receiver}/v1/track", body, headers=basic_auth(key.api_key))
    assert first.status == 200

    operator = await asyncpg.connect(settings.require_database_url())
    try:
        revoked_at = time.monotonic()
        assert await revoke_key(operator, key.key_prefix) == key.key_prefix
    finally:
        await operator.close()

    statuses = []
    while time.monotonic() - revoked_at < REVOCATION_BOUND_SECONDS + 2:
        answer = await send(http, f"{receiver}/v1/track", body, headers=basic_auth(key.api_key))
        statuses.append(answer.status)
        if answer.status == 403:
            break
        await asyncio.sleep(0.05)
    took = time.monotonic() - revoked_at
    assert statuses[-1] == 403, statuses
    assert set(statuses[:-1]) <= {200}
    assert took < REVOCATION_BOUND_SECONDS


async def test_other_keys_of_the_workspace_keep_working(
    receiver: str, http: aiohttp.ClientSession, make_key: MakeKey, db: asyncpg.Connection
) -> None:
    """Revoking one key leaves the workspace's other keys accepted."""
    kept = await make_key()
    revoked = await make_key(kept.workspace)
    await revoke_key(db, revoked.api_key)
    body = {"userId": "u1", "event": "E"}
    refused = await send(http, f"{receiver}/v1/track", body, headers=basic_auth(revoked.api_key))
    accepted = await send(http, f"{receiver}/v1/track", body, headers=basic_auth(kept.api_key))
    assert refused.status == 403
    assert accepted.status == 200
