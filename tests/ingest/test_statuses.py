"""Every status the receiver answers, and when, against a running receiver."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import msgspec
import pytest

from ops.keys import CreatedKey, revoke_key
from sextant.settings import Settings
from tests.support.fixture_types import MakeKey
from tests.support.helpers import basic_auth
from tests.support.sender import kafka_messages, send

TRACK = {"userId": "u1", "event": "Signed Up"}


async def test_valid_call_is_answered_200_with_counts(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey, settings: Settings
) -> None:
    """A valid call gets 200 with accepted, skipped and rejected, and is in Kafka."""
    answer = await send(http, f"{receiver}/v1/track", TRACK, headers=basic_auth(workspace.api_key))
    assert answer.status == 200
    assert answer.body == {"success": True, "accepted": 1, "skipped": 0, "rejected": []}
    [(_, message)] = await kafka_messages(settings, 1)
    assert message["event"] == "Signed Up"


@pytest.mark.parametrize(
    ("route", "raw"),
    [
        pytest.param("/v1/track", b'{"userId": "u1", "event": ', id="truncated-json"),
        pytest.param("/v1/batch", b"not json at all", id="not-json"),
        pytest.param("/v1/batch", b"", id="empty-body"),
        pytest.param("/segment", b'"just a string"', id="string"),
        pytest.param("/segment", b"42", id="number"),
        pytest.param("/v1/track", b'[{"userId": "u1", "event": "E"}]', id="array-on-single"),
        pytest.param("/v1/batch", b'{"batch": {"userId": "u1"}}', id="batch-not-array"),
        pytest.param("/v1/batch", b'{"userId": "u1", "event": "E"}', id="batch-missing"),
    ],
)
async def test_body_that_is_not_a_message_or_batch_is_400(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey, route: str, raw: bytes
) -> None:
    """A body that is not JSON, or not the object or array the route takes, is refused 400."""
    answer = await send(http, receiver + route, raw=raw, headers=basic_auth(workspace.api_key))
    assert answer.status == 400


@pytest.mark.parametrize(
    ("route", "body", "reason"),
    [
        pytest.param("/v1/identify", {"traits": {"a": 1}}, "neither userId", id="no-identity"),
        pytest.param(
            "/v1/identify", {"userId": "", "anonymousId": None}, "neither userId", id="empty-ids"
        ),
        pytest.param("/v1/track", {"userId": "u1"}, "no event", id="track-without-event"),
        pytest.param("/v1/group", {"userId": "u1"}, "groupId", id="group-without-groupId"),
        pytest.param("/v1/alias", {"userId": "u1"}, "previousId", id="alias-without-previousId"),
        pytest.param(
            "/v1/track",
            {**TRACK, "messageId": "m" * 251},
            "messageId is longer than 250",
            id="long-messageId",
        ),
        pytest.param(
            "/v1/page",
            {"userId": "u" * 501},
            "userId is longer than 500",
            id="long-userId",
        ),
    ],
)
async def test_every_message_invalid_is_400_with_the_reason(
    receiver: str,
    http: aiohttp.ClientSession,
    workspace: CreatedKey,
    settings: Settings,
    route: str,
    body: dict[str, Any],
    reason: str,
) -> None:
    """A request whose only message is invalid is refused 400 saying why; nothing is produced."""
    answer = await send(http, receiver + route, body, headers=basic_auth(workspace.api_key))
    assert answer.status == 400
    assert reason in answer.body["message"]
    assert await kafka_messages(settings, 0) == []


async def test_batch_of_only_invalid_messages_is_400_listing_each(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey
) -> None:
    """A batch in which every message is invalid is refused 400 with each index and reason."""
    batch = [
        {"type": "track", "userId": "u1"},
        {"type": "group", "userId": "u1"},
        {"type": "identify"},
    ]
    answer = await send(
        http, f"{receiver}/v1/batch", {"batch": batch}, headers=basic_auth(workspace.api_key)
    )
    assert answer.status == 400
    assert [r["index"] for r in answer.body["rejected"]] == [0, 1, 2]
    assert "event" in answer.body["rejected"][0]["message"]
    assert "groupId" in answer.body["rejected"][1]["message"]


async def test_no_key_is_401(receiver: str, http: aiohttp.ClientSession) -> None:
    """A call without any API key is refused 401."""
    answer = await send(http, f"{receiver}/v1/track", TRACK)
    assert answer.status == 401


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(basic_auth("sx_not-a-key-anyone-made"), id="unknown-key"),
        pytest.param({"Authorization": "Basic %%%not-base64"}, id="malformed-basic"),
        pytest.param({"Authorization": "Bearer "}, id="empty-bearer"),
    ],
)
async def test_unknown_or_unreadable_key_is_401(
    receiver: str, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    """A key nobody created, or credentials that hold no key, are refused 401."""
    answer = await send(http, f"{receiver}/v1/track", TRACK, headers=headers)
    assert answer.status == 401


async def test_revoked_key_is_403(
    receiver: str, http: aiohttp.ClientSession, make_key: MakeKey, db: asyncpg.Connection
) -> None:
    """A key revoked before the receiver loaded it is refused 403."""
    key = await make_key()
    await revoke_key(db, key.api_key)
    answer = await send(http, f"{receiver}/v1/track", TRACK, headers=basic_auth(key.api_key))
    assert answer.status == 403
    assert "revoked" in answer.body["message"]


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        pytest.param("https://evil.example", 403, id="foreign"),
        pytest.param("https://shop.example.evil.example", 403, id="suffix-trick"),
        pytest.param("https://notshop.example", 403, id="same-ending"),
        pytest.param("null", 403, id="opaque-origin"),
        pytest.param("https://shop.example", 200, id="trusted"),
        pytest.param("https://www.shop.example:8443", 200, id="subdomain-with-port"),
        pytest.param(None, 200, id="server-side-no-origin"),
    ],
)
async def test_origin_outside_trusted_domains_is_403(
    receiver: str, http: aiohttp.ClientSession, make_key: MakeKey, origin: str | None, status: int
) -> None:
    """A connector with trusted domains refuses any other browser Origin with 403."""
    key = await make_key(trusted_domains=["Shop.Example"])
    headers = basic_auth(key.api_key) | ({"Origin": origin} if origin else {})
    answer = await send(http, f"{receiver}/v1/track", TRACK, headers=headers)
    assert answer.status == status


async def test_browsers_get_cors_preflight_and_may_read_answers(
    receiver: str, http: aiohttp.ClientSession, make_key: MakeKey
) -> None:
    """A browser's preflight is answered with the methods and headers a Segment client
    sends; the answer to its POST, success or refusal, names its Origin so the page may
    read it; server-side senders get no CORS headers, and metrics none either."""
    origin = "https://www.shop.example"
    async with http.options(
        f"{receiver}/v1/batch",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    ) as preflight:
        assert preflight.status == 200
        assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
        assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()
    key = await make_key(trusted_domains=["shop.example"])
    ok = await send(
        http, f"{receiver}/v1/track", TRACK, headers=basic_auth(key.api_key) | {"Origin": origin}
    )
    refused = await send(
        http,
        f"{receiver}/v1/track",
        TRACK,
        headers=basic_auth(key.api_key) | {"Origin": "https://evil.example"},
    )
    server_side = await send(http, f"{receiver}/v1/track", TRACK, headers=basic_auth(key.api_key))
    assert (ok.status, ok.headers["Access-Control-Allow-Origin"]) == (200, origin)
    assert refused.status == 403
    assert refused.headers["Access-Control-Allow-Origin"] == "https://evil.example"
    assert "Access-Control-Allow-Origin" not in server_side.headers
    async with http.get(f"{receiver}/metrics", headers={"Origin": origin}) as metrics:
        assert "Access-Control-Allow-Origin" not in metrics.headers


def _sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


@pytest.mark.parametrize(
    ("signature", "status"),
    [
        pytest.param(None, 403, id="missing"),
        pytest.param("0" * 40, 403, id="wrong"),
        pytest.param(lambda body: _sign("other-secret", body), 403, id="other-secret"),
        pytest.param(lambda body: _sign("s3cret", body), 200, id="right"),
        pytest.param(lambda body: _sign("s3cret", body).upper(), 200, id="right-uppercase"),
    ],
)
async def test_signature_is_required_when_connector_has_a_secret(
    receiver: str, http: aiohttp.ClientSession, make_key: MakeKey, signature: Any, status: int
) -> None:
    """With a shared secret, only a body whose X-Signature is its HMAC-SHA1 is accepted."""
    key = await make_key(shared_secret="s3cret")
    raw = b'{"userId": "u1", "event": "Signed"}'
    headers = basic_auth(key.api_key)
    if signature is not None:
        headers["X-Signature"] = signature if isinstance(signature, str) else signature(raw)
    answer = await send(http, f"{receiver}/v1/track", raw=raw, headers=headers)
    assert answer.status == status


async def test_signature_covers_the_gzip_body_as_sent(
    receiver: str, http: aiohttp.ClientSession, make_key: MakeKey
) -> None:
    """The signature of a gzip request is over the compressed bytes that were sent."""
    key = await make_key(shared_secret="s3cret")
    raw = gzip.compress(b'{"userId": "u1", "event": "Signed"}')
    headers = basic_auth(key.api_key) | {
        "Content-Encoding": "gzip",
        "X-Signature": _sign("s3cret", raw),
    }
    answer = await send(http, f"{receiver}/v1/track", raw=raw, headers=headers)
    assert answer.status == 200


async def test_message_over_32kb_on_a_single_route_is_413(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey, settings: Settings
) -> None:
    """One message over 32 KB sent on /v1/track is refused 413 and not produced."""
    body = {**TRACK, "properties": {"blob": "x" * (33 * 1024)}}
    answer = await send(http, f"{receiver}/v1/track", body, headers=basic_auth(workspace.api_key))
    assert answer.status == 413
    assert await kafka_messages(settings, 0) == []


async def test_message_just_under_32kb_is_accepted(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey
) -> None:
    """A message just under the 32 KB limit is accepted."""
    body = {**TRACK, "properties": {"blob": "x" * (31 * 1024)}}
    answer = await send(http, f"{receiver}/v1/track", body, headers=basic_auth(workspace.api_key))
    assert answer.status == 200


def _big_batch() -> dict[str, Any]:
    """About 600 KB of valid messages, each well under 32 KB."""
    message = {"type": "track", **TRACK, "properties": {"blob": "x" * (30 * 1024)}}
    return {"batch": [message] * 20}


async def test_request_over_500kb_is_413(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey, settings: Settings
) -> None:
    """A request over 500 KB is refused 413 before any of it is produced."""
    answer = await send(
        http, f"{receiver}/v1/batch", _big_batch(), headers=basic_auth(workspace.api_key)
    )
    assert answer.status == 413
    assert await kafka_messages(settings, 0) == []


async def test_chunked_request_over_500kb_is_413(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey
) -> None:
    """A request over 500 KB without a Content-Length is refused 413 as it streams in."""
    data = msgspec.json.encode(_big_batch())

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 64 * 1024):
            yield data[start : start + 64 * 1024]

    headers = basic_auth(workspace.api_key) | {"Content-Type": "application/json"}
    async with http.post(f"{receiver}/v1/batch", data=chunks(), headers=headers) as response:
        assert response.status == 413
        assert "message" in await response.json()


async def test_batch_over_2500_messages_is_413(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey, settings: Settings
) -> None:
    """A batch of 2,501 small messages is refused 413; 2,500 is the limit."""
    batch = [{"type": "track", "userId": "u", "event": "E"}] * 2501
    answer = await send(
        http, f"{receiver}/v1/batch", {"batch": batch}, headers=basic_auth(workspace.api_key)
    )
    assert answer.status == 413
    assert "2500" in answer.body["message"]
    assert await kafka_messages(settings, 0) == []


async def test_batch_of_exactly_2500_messages_is_accepted(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey
) -> None:
    """A batch of exactly 2,500 messages is accepted whole."""
    batch = [{"type": "track", "userId": f"u{i}", "event": "E"} for i in range(2500)]
    answer = await send(
        http, f"{receiver}/v1/batch", {"batch": batch}, headers=basic_auth(workspace.api_key)
    )
    assert answer.status == 200
    assert answer.body["accepted"] == 2500


async def test_gzip_body_inflating_past_500kb_is_413(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey, settings: Settings
) -> None:
    """A small gzip body that inflates past 500 KB is refused 413."""
    answer = await send(
        http,
        f"{receiver}/v1/batch",
        _big_batch(),
        headers=basic_auth(workspace.api_key),
        gzip=True,
    )
    assert answer.status == 413
    assert "decompressed" in answer.body["message"]
    assert await kafka_messages(settings, 0) == []


@pytest.mark.parametrize(
    ("route", "body"),
    [
        pytest.param("/segment", {"type": "screenshot", "userId": "u1"}, id="segment"),
        pytest.param(
            "/v1/batch", {"batch": [{"type": "merge", "userId": "u1"}]}, id="batch-of-one"
        ),
    ],
)
async def test_unsupported_type_is_501(
    receiver: str,
    http: aiohttp.ClientSession,
    workspace: CreatedKey,
    route: str,
    body: dict[str, Any],
) -> None:
    """A message whose type Sextant does not handle is refused 501, which Segment does not retry."""
    answer = await send(http, receiver + route, body, headers=basic_auth(workspace.api_key))
    assert answer.status == 501
    assert "not supported" in answer.body["message"]


async def test_unknown_route_and_method_answer_json(
    receiver: str, http: aiohttp.ClientSession
) -> None:
    """A path that does not exist, or a GET on a POST route, is still answered in JSON."""
    async with http.get(f"{receiver}/v1/nowhere") as response:
        assert response.status == 404
        assert "message" in await response.json()
    async with http.get(f"{receiver}/v1/track") as response:
        assert response.status == 405
        assert "message" in await response.json()
    async with http.put(f"{receiver}/segment") as response:
        assert response.status == 405
        assert set(response.headers["Allow"].split(",")) == {"POST", "OPTIONS"}
        assert "message" in await response.json()


async def test_a_request_aiohttp_cannot_parse_is_answered_in_json(receiver: str) -> None:
    """Both Content-Length and Transfer-Encoding (request smuggling's shape): a JSON 400."""
    host, port = receiver.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    )
    await writer.drain()
    head, _, body = (await reader.read()).partition(b"\r\n\r\n")
    writer.close()
    assert head.split(b"\r\n")[0].endswith(b" 400 Bad Request")
    assert b"Content-Type: application/json" in head
    assert "Transfer-Encoding" in msgspec.json.decode(body)["message"]


def deep(levels: int) -> bytes:
    """A track whose properties nest until the message is `levels` deep."""
    inner = b'{"a":' * (levels - 1) + b"1" + b"}" * (levels - 1)
    return b'{"type":"track","userId":"u1","event":"E","properties":' + inner + b"}"


@pytest.mark.parametrize("levels", [980, 1000])
@pytest.mark.parametrize("route", ["/v1/track", "/v1/batch", "/v1/import", "/segment"])
async def test_deeply_nested_messages_are_refused_with_400_not_500(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey, route: str, levels: int
) -> None:
    """Nesting past 32 levels is refused with its reason on every route: never a 500."""
    message = deep(levels)
    raw = {"/v1/track": message, "/segment": b"[" + message + b"]"}.get(
        route, b'{"batch":[' + message + b"]}"
    )
    answer = await send(http, f"{receiver}{route}", raw=raw, headers=basic_auth(workspace.api_key))
    assert answer.status == 400
    assert "nested deeper than 32 levels" in answer.body["message"]
