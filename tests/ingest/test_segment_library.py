"""Segment's own Python library (`segment-analytics-python`) talking to the receiver."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from segment.analytics import Client

from ops.keys import CreatedKey
from sextant.settings import Settings
from tests.support.sender import kafka_messages


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
async def test_segment_library_calls_reach_kafka(
    receiver: str, workspace: CreatedKey, settings: Settings, gzip: bool
) -> None:
    """identify, track, page, group and alias from Segment's library are produced, stamped."""
    errors: list[Any] = []
    client = Client(
        write_key=workspace.api_key,
        host=receiver,
        gzip=gzip,
        max_retries=0,
        upload_interval=0.05,
        on_error=lambda error, batch: errors.append(error),
    )

    def calls() -> None:
        client.identify("u1", {"email": "ada@example.com"})
        client.track("u1", "Signed Up", {"plan": "pro"})
        client.page("u1", "Docs", "Pricing", {"url": "https://example.com/pricing"})
        client.group("u1", "g1", {"name": "Acme"})
        client.alias("anon-7", "u1")
        client.track(anonymous_id="anon-8", event="Browsed")
        client.shutdown()

    await asyncio.to_thread(calls)
    assert errors == []

    messages = await kafka_messages(settings, 6)
    by_type = {message["type"]: (key, message) for key, message in messages}
    assert len(messages) == 6
    assert sorted(m["type"] for _, m in messages) == [
        "alias",
        "group",
        "identify",
        "page",
        "track",
        "track",
    ]
    for kind in ("identify", "page", "group", "alias"):
        key, message = by_type[kind]
        assert key == f"{workspace.workspace_id}:u1".encode()
        assert message["sextant"]["workspaceId"] == workspace.workspace_id
        assert message["context"]["library"]["name"] == "analytics-python"
        assert "writeKey" not in message
        assert message["receivedAt"]
    assert by_type["alias"][1]["previousId"] == "anon-7"
    assert by_type["group"][1]["traits"] == {"name": "Acme"}
    tracks = {m["event"]: (key, m) for key, m in messages if m["type"] == "track"}
    assert tracks["Signed Up"][0] == f"{workspace.workspace_id}:u1".encode()
    assert tracks["Browsed"][0] == f"{workspace.workspace_id}:anon-8".encode()
    assert len({m["messageId"] for _, m in messages}) == 6
