"""Every way a Segment sender may present its key."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import asyncpg
import pytest

from ops.keys import CreatedKey
from sextant.apikeys import hash_key
from sextant.settings import Settings
from tests.support.fixture_types import MakeKey
from tests.support.helpers import basic_auth
from tests.support.sender import kafka_messages, send


def _basic(credentials: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


HEADER_FORMS = {
    "basic-with-colon": lambda key: _basic(f"{key}:"),
    "basic-without-colon": lambda key: _basic(key),
    "basic-lowercase-scheme": lambda key: {
        "Authorization": "basic " + base64.b64encode(f"{key}:".encode()).decode()
    },
    "bearer": lambda key: {"Authorization": f"Bearer {key}"},
    "x-write-key": lambda key: {"X-Write-Key": key},
}


@pytest.mark.parametrize("form", HEADER_FORMS)
@pytest.mark.parametrize("route", ["/v1/track", "/segment"])
async def test_key_in_a_header_is_accepted(
    receiver: str,
    http: aiohttp.ClientSession,
    workspace: CreatedKey,
    settings: Settings,
    form: str,
    route: str,
) -> None:
    """Basic (with or without the colon), Bearer and X-Write-Key each authenticate a call."""
    body = {"type": "track", "userId": "u1", "event": "E"}
    answer = await send(http, receiver + route, body, headers=HEADER_FORMS[form](workspace.api_key))
    assert answer.status == 200, answer.body
    [(_, message)] = await kafka_messages(settings, 1)
    assert message["sextant"]["workspaceId"] == workspace.workspace_id


@pytest.mark.parametrize(
    ("route", "body"),
    [
        pytest.param(
            "/v1/batch",
            {"batch": [{"type": "track", "userId": "u1", "event": "E"}]},
            id="batch",
        ),
        pytest.param(
            "/v1/import",
            {"batch": [{"type": "identify", "userId": "u1"}]},
            id="import",
        ),
        pytest.param("/v1/track", {"userId": "u1", "event": "E"}, id="single"),
        pytest.param("/segment", {"type": "identify", "userId": "u1"}, id="segment"),
    ],
)
async def test_write_key_in_the_body_is_accepted_and_not_forwarded(
    receiver: str,
    http: aiohttp.ClientSession,
    workspace: CreatedKey,
    settings: Settings,
    route: str,
    body: dict[str, Any],
) -> None:
    """`writeKey` in a batch or single-message body authenticates, and never reaches Kafka."""
    answer = await send(http, receiver + route, {**body, "writeKey": workspace.api_key})
    assert answer.status == 200, answer.body
    [(_, message)] = await kafka_messages(settings, 1)
    assert message["sextant"]["workspaceId"] == workspace.workspace_id
    assert "writeKey" not in message
    assert workspace.api_key.encode() not in str(message).encode()


async def test_write_key_in_a_gzip_body_is_accepted(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey
) -> None:
    """A `writeKey` inside a gzip body is found once the body is inflated."""
    body = {"batch": [{"type": "page", "userId": "u1"}], "writeKey": workspace.api_key}
    answer = await send(http, f"{receiver}/v1/batch", body, gzip=True)
    assert answer.status == 200


async def test_header_key_comes_before_the_body_key(
    receiver: str,
    http: aiohttp.ClientSession,
    workspace: CreatedKey,
    make_key: MakeKey,
    settings: Settings,
) -> None:
    """With a key in both the header and the body, the header's key names the workspace."""
    other = await make_key()
    body = {"batch": [{"type": "track", "userId": "u1", "event": "E"}], "writeKey": other.api_key}
    answer = await send(http, f"{receiver}/v1/batch", body, headers=basic_auth(workspace.api_key))
    assert answer.status == 200
    [(key, message)] = await kafka_messages(settings, 1)
    assert message["sextant"]["workspaceId"] == workspace.workspace_id
    assert key == f"{workspace.workspace_id}:u1".encode()


async def test_unknown_header_key_is_not_rescued_by_the_body_key(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey
) -> None:
    """The first key found decides: an unknown header key is 401 even with a valid body key."""
    body = {
        "batch": [{"type": "track", "userId": "u1", "event": "E"}],
        "writeKey": workspace.api_key,
    }
    answer = await send(http, f"{receiver}/v1/batch", body, headers=basic_auth("sx_unknown_key"))
    assert answer.status == 401


async def test_key_created_after_start_works_at_once(
    receiver: str, http: aiohttp.ClientSession, make_key: MakeKey
) -> None:
    """A key created while the receiver runs is accepted on its first call, not after a refresh."""
    key = await make_key()
    answer = await send(
        http, f"{receiver}/v1/identify", {"userId": "u1"}, headers=basic_auth(key.api_key)
    )
    assert answer.status == 200


async def test_keys_are_stored_only_as_hash_and_prefix(
    workspace: CreatedKey, db: asyncpg.Connection
) -> None:
    """The api_keys table holds the key's hash and prefix, never the key itself."""
    row = await db.fetchrow(
        "SELECT * FROM api_keys WHERE workspace_id = $1", workspace.workspace_id
    )
    assert row is not None
    assert row["key_hash"] == hash_key(workspace.api_key)
    assert workspace.api_key.startswith(row["key_prefix"])
    assert len(row["key_prefix"]) < len(workspace.api_key) // 2
    assert all(workspace.api_key not in str(value) for value in row.values())
