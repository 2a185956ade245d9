"""What reaches Kafka for each call: routes, batches, integrations, merging and stamps."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from ops.keys import CreatedKey
from sextant.settings import Settings
from tests.support.helpers import basic_auth
from tests.support.sender import kafka_messages, send

ROUTES = [
    pytest.param(
        "/v1/identify", {"userId": "u1", "traits": {"plan": "pro"}}, "identify", id="identify"
    ),
    pytest.param("/v1/track", {"userId": "u1", "event": "Paid"}, "track", id="track"),
    pytest.param("/v1/page", {"userId": "u1", "name": "Home"}, "page", id="page"),
    pytest.param("/v1/screen", {"userId": "u1", "name": "Home"}, "screen", id="screen"),
    pytest.param("/v1/group", {"userId": "u1", "groupId": "g1"}, "group", id="group"),
    pytest.param("/v1/alias", {"userId": "u1", "previousId": "anon-1"}, "alias", id="alias"),
    pytest.param(
        "/v1/batch",
        {"batch": [{"type": "track", "userId": "u1", "event": "Paid"}]},
        "track",
        id="batch",
    ),
    pytest.param(
        "/v1/import", {"batch": [{"type": "identify", "userId": "u1"}]}, "identify", id="import"
    ),
    pytest.param(
        "/segment", {"type": "group", "userId": "u1", "groupId": "g1"}, "group", id="segment-object"
    ),
    pytest.param("/segment", [{"type": "page", "userId": "u1"}], "page", id="segment-array"),
    pytest.param("/segment", {"type": "delete", "userId": "u1"}, "delete", id="segment-delete"),
]


@pytest.mark.parametrize(("route", "body", "kind"), ROUTES)
async def test_every_route_produces_its_call(
    receiver: str,
    http: aiohttp.ClientSession,
    workspace: CreatedKey,
    settings: Settings,
    route: str,
    body: Any,
    kind: str,
) -> None:
    """Each route's call reaches Kafka with its type, under the workspace and user's key."""
    answer = await send(http, receiver + route, body, headers=basic_auth(workspace.api_key))
    assert answer.status == 200, answer.body
    assert answer.body["accepted"] == 1
    [(key, message)] = await kafka_messages(settings, 1)
    assert key == f"{workspace.workspace_id}:u1".encode()
    assert message["type"] == kind
    assert message["userId"] == "u1"


async def test_message_type_overrides_the_route_default(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey, settings: Settings
) -> None:
    """A single-message route's type is only a default: the message's own type wins."""
    body = {"type": "page", "userId": "u1", "name": "Pricing"}
    answer = await send(http, f"{receiver}/v1/track", body, headers=basic_auth(workspace.api_key))
    assert answer.status == 200
    [(_, message)] = await kafka_messages(settings, 1)
    assert message["type"] == "page"


async def test_segment_array_of_several_types(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey, settings: Settings
) -> None:
    """A /segment array carries calls of any types, each produced."""
    body = [
        {"type": "identify", "userId": "u1"},
        {"type": "track", "userId": "u1", "event": "E"},
        {"type": "delete", "userId": "u2"},
    ]
    answer = await send(http, f"{receiver}/segment", body, headers=basic_auth(workspace.api_key))
    assert answer.body["accepted"] == 3
    messages = await kafka_messages(settings, 3)
    assert sorted(m["type"] for _, m in messages) == ["delete", "identify", "track"]


@pytest.mark.parametrize(
    ("message", "identity"),
    [
        pytest.param({"userId": "u1", "anonymousId": "a1"}, "u1", id="userId-first"),
        pytest.param({"anonymousId": "a1"}, "a1", id="anonymous"),
        pytest.param({"userId": "", "anonymousId": "a1"}, "a1", id="empty-userId"),
        pytest.param({"userId": 42}, "42", id="numeric-userId"),
    ],
)
async def test_kafka_key_is_workspace_and_identity(
    receiver: str,
    http: aiohttp.ClientSession,
    workspace: CreatedKey,
    settings: Settings,
    message: dict[str, Any],
    identity: str,
) -> None:
    """The record key is `workspaceId:userId`, else `workspaceId:anonymousId`."""
    body = {**message, "event": "E"}
    answer = await send(http, f"{receiver}/v1/track", body, headers=basic_auth(workspace.api_key))
    assert answer.status == 200
    [(key, _)] = await kafka_messages(settings, 1)
    assert key == f"{workspace.workspace_id}:{identity}".encode()


async def test_gzip_batch_is_accepted(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey, settings: Settings
) -> None:
    """A gzip-encoded batch is inflated, and every call in it is produced."""
    batch = [
        {"type": "track", "userId": f"u{i}", "event": "E", "messageId": f"m{i}"} for i in range(50)
    ]
    answer = await send(
        http,
        f"{receiver}/v1/batch",
        {"batch": batch},
        headers=basic_auth(workspace.api_key),
        gzip=True,
    )
    assert answer.body["accepted"] == 50
    messages = await kafka_messages(settings, 50)
    assert sorted(m["messageId"] for _, m in messages) == sorted(f"m{i}" for i in range(50))


async def test_invalid_messages_in_a_batch_are_rejected_by_index(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey, settings: Settings
) -> None:
    """Invalid messages are listed by index while the valid rest reach Kafka."""
    batch = [
        {"type": "track", "userId": "u1", "event": "E", "messageId": "ok-0"},
        {"type": "track", "event": "E"},
        {"type": "identify", "userId": "u1", "messageId": "ok-2"},
        {"type": "track", "userId": "u1"},
        {"type": "page", "userId": "u1" * 300},
        {"type": "teleport", "userId": "u1"},
        "not an object",
        {"type": "alias", "userId": "u1", "previousId": "a1", "messageId": "ok-7"},
    ]
    answer = await send(
        http, f"{receiver}/v1/batch", {"batch": batch}, headers=basic_auth(workspace.api_key)
    )
    assert answer.status == 200
    assert answer.body["accepted"] == 3
    assert [r["index"] for r in answer.body["rejected"]] == [1, 3, 4, 5, 6]
    assert all(r["message"] for r in answer.body["rejected"])
    messages = await kafka_messages(settings, 3)
    assert sorted(m["messageId"] for _, m in messages) == ["ok-0", "ok-2", "ok-7"]


async def test_what_the_door_mends_reaches_kafka_with_its_warnings(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey, settings: Settings
) -> None:
    """A timestamp nobody can read and traits of the wrong type are left out, the call is
    accepted, and its record carries a warning for each."""
    message = {"userId": "u1", "timestamp": "not a time", "traits": "plan=pro"}
    answer = await send(
        http, f"{receiver}/v1/identify", message, headers=basic_auth(workspace.api_key)
    )
    [(_, record)] = await kafka_messages(settings, 1)
    assert (answer.status, answer.body["accepted"]) == (200, 1)
    assert "timestamp" not in record
    assert "traits" not in record
    assert [w["kind"] for w in record["sextant"]["warnings"]] == [
        "timestamp_unparsable",
        "field_dropped",
    ]


async def test_integrations_decide_what_is_forwarded(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey, settings: Settings
) -> None:
    """`All: false` and `Astrolabe: false` skip a call; `Astrolabe: true` brings it back."""

    def call(name: str, integrations: dict[str, Any] | None) -> dict[str, Any]:
        message = {"type": "track", "userId": "u1", "event": "E", "messageId": name}
        return message if integrations is None else {**message, "integrations": integrations}

    batch = [
        call("all-off", {"All": False}),
        call("all-off-ours-on", {"All": False, "Astrolabe": True}),
        call("all-off-ours-settings", {"All": False, "Astrolabe": {"sync": "full"}}),
        call("ours-off", {"Astrolabe": False}),
        call("ours-off-all-on", {"All": True, "Astrolabe": False}),
        call("others-off", {"Mixpanel": False}),
        call("none", None),
    ]
    answer = await send(
        http, f"{receiver}/v1/batch", {"batch": batch}, headers=basic_auth(workspace.api_key)
    )
    assert answer.body == {"success": True, "accepted": 4, "skipped": 3, "rejected": []}
    messages = await kafka_messages(settings, 4)
    assert sorted(m["messageId"] for _, m in messages) == [
        "all-off-ours-on",
        "all-off-ours-settings",
        "none",
        "others-off",
    ]


async def test_batch_level_integrations_apply_to_each_message(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey, settings: Settings
) -> None:
    """Batch-level `All: false` skips messages unless a message turns us back on itself."""
    batch = [
        {"type": "track", "userId": "u1", "event": "E", "messageId": "plain"},
        {
            "type": "track",
            "userId": "u1",
            "event": "E",
            "messageId": "mine",
            "integrations": {"Astrolabe": True},
        },
    ]
    body = {"batch": batch, "integrations": {"All": False}}
    answer = await send(http, f"{receiver}/v1/batch", body, headers=basic_auth(workspace.api_key))
    assert answer.body["accepted"] == 1
    assert answer.body["skipped"] == 1
    [(_, message)] = await kafka_messages(settings, 1)
    assert message["messageId"] == "mine"
    assert message["integrations"] == {"All": False, "Astrolabe": True}


async def test_only_skipped_calls_answer_200(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey, settings: Settings
) -> None:
    """A call that turns us off is answered 200 and counted as skipped, not produced."""
    body = {"userId": "u1", "event": "E", "integrations": {"All": False}}
    answer = await send(http, f"{receiver}/v1/track", body, headers=basic_auth(workspace.api_key))
    assert answer.status == 200
    assert answer.body == {"success": True, "accepted": 0, "skipped": 1, "rejected": []}
    assert await kafka_messages(settings, 0) == []


async def test_batch_context_is_merged_into_each_message(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey, settings: Settings
) -> None:
    """Batch-level context fills each message's context; the message's own keys win."""
    batch = [
        {
            "type": "track",
            "userId": "u1",
            "event": "E",
            "messageId": "own",
            "context": {"locale": "fr-FR", "page": {"url": "https://a.example"}},
        },
        {"type": "track", "userId": "u1", "event": "E", "messageId": "bare"},
    ]
    body = {
        "batch": batch,
        "context": {"locale": "en-US", "ip": "203.0.113.9", "library": {"name": "lib"}},
        "integrations": {"Mixpanel": False},
    }
    answer = await send(http, f"{receiver}/v1/batch", body, headers=basic_auth(workspace.api_key))
    assert answer.body["accepted"] == 2
    messages = {m["messageId"]: m for _, m in await kafka_messages(settings, 2)}
    assert messages["own"]["context"] == {
        "locale": "fr-FR",
        "ip": "203.0.113.9",
        "library": {"name": "lib"},
        "page": {"url": "https://a.example"},
    }
    assert messages["bare"]["context"] == body["context"]
    assert messages["bare"]["integrations"] == {"Mixpanel": False}


@pytest.mark.parametrize("merged", [False, True], ids=["fast-path", "merged-batch"])
async def test_each_record_is_stamped(
    receiver: str,
    http: aiohttp.ClientSession,
    workspace: CreatedKey,
    settings: Settings,
    merged: bool,
) -> None:
    """Each record carries receivedAt, the workspace and connector, and a messageId."""
    body: dict[str, Any] = {
        "batch": [
            {"type": "track", "userId": "u1", "event": "E", "messageId": "client-id"},
            {"type": "track", "userId": "u1", "event": "E", "properties": {"n": 1}},
        ]
    }
    if merged:
        body["context"] = {"ip": "203.0.113.9"}
    answer = await send(http, f"{receiver}/v1/batch", body, headers=basic_auth(workspace.api_key))
    assert answer.body["accepted"] == 2
    messages = [m for _, m in await kafka_messages(settings, 2)]
    for message in messages:
        assert message["sextant"] == {
            "workspaceId": workspace.workspace_id,
            "connectorId": workspace.connector_id,
            "callTime": message["receivedAt"],  # no timestamp: the call happened on receipt
        }
        assert datetime.fromisoformat(message["receivedAt"]).tzinfo is not None
    ids = sorted(m["messageId"] for m in messages)
    assert "client-id" in ids
    derived = next(i for i in ids if i != "client-id")
    assert uuid.UUID(derived)


async def test_same_body_sent_twice_gets_the_same_message_id(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey, settings: Settings
) -> None:
    """A retried body without messageIds gets the same derived ids, so it is applied once."""
    body = {
        "batch": [
            {"type": "track", "userId": "u1", "event": "A"},
            {"type": "track", "userId": "u1", "event": "B"},
        ]
    }
    for _ in range(2):
        answer = await send(
            http, f"{receiver}/v1/batch", body, headers=basic_auth(workspace.api_key)
        )
        assert answer.body["accepted"] == 2
    messages = [m for _, m in await kafka_messages(settings, 4)]
    by_event: dict[str, set[str]] = {}
    for m in messages:
        by_event.setdefault(m["event"], set()).add(m["messageId"])
    assert len(messages) == 4
    assert all(len(ids) == 1 for ids in by_event.values())
    assert by_event["A"] != by_event["B"]


@pytest.mark.parametrize(
    "hostile",
    [
        pytest.param({"sextant": {"workspaceId": 1, "connectorId": 1}}, id="other-workspace"),
        pytest.param({"sextant": None}, id="null-stamp"),
        pytest.param({"sextant": "x", "receivedAt": "1999-01-01T00:00:00Z"}, id="old-receivedAt"),
        pytest.param({"receivedAt": None, "messageId": None, "type": None}, id="null-stamps"),
        pytest.param({"messageId": "", "type": ""}, id="empty-stamps"),
        pytest.param({"writeKey": None}, id="null-writeKey"),
        pytest.param({"writeKey": "sx_someone_elses"}, id="writeKey"),
    ],
)
@pytest.mark.parametrize("route", ["/v1/identify", "/v1/batch"])
async def test_client_cannot_set_the_stamps(
    receiver: str,
    http: aiohttp.ClientSession,
    workspace: CreatedKey,
    settings: Settings,
    hostile: dict[str, Any],
    route: str,
) -> None:
    """A client's own `sextant`, `receivedAt` or `writeKey` never survive into Kafka."""
    message = {"userId": "u1", **hostile}
    body = {"batch": [{**message, "type": "identify"}]} if route == "/v1/batch" else message
    answer = await send(http, receiver + route, body, headers=basic_auth(workspace.api_key))
    assert answer.status == 200, answer.body
    [(key, record)] = await kafka_messages(settings, 1)
    assert key == f"{workspace.workspace_id}:u1".encode()
    assert record["sextant"] == {
        "workspaceId": workspace.workspace_id,
        "connectorId": workspace.connector_id,
        "callTime": record["receivedAt"],
    }
    assert record["type"] == "identify"
    assert record["messageId"]
    assert not record["receivedAt"].startswith("1999")
    assert "writeKey" not in record
