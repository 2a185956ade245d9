"""Liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import aiohttp
import msgspec
from prometheus_client.parser import text_string_to_metric_families

from ops.keys import CreatedKey
from tests.support.helpers import basic_auth
from tests.support.sender import send


async def test_healthz_and_readyz_answer_200_when_running(
    receiver: str, http: aiohttp.ClientSession
) -> None:
    """A receiver with its broker and keys answers 200 on /healthz and /readyz."""
    async with http.get(f"{receiver}/healthz") as response:
        assert response.status == 200
        assert (await response.json())["ok"] is True
    async with http.get(f"{receiver}/readyz") as response:
        assert response.status == 200
        assert await response.json() == {"ready": True, "broker": True, "keys": True}


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_count_requests_and_calls(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey
) -> None:
    """/metrics is Prometheus text counting requests by route and status, and calls by outcome."""
    batch = [
        {"type": "track", "userId": "u1", "event": "E"},
        {"type": "track", "userId": "u1", "event": "E", "integrations": {"All": False}},
        {"type": "track", "userId": "u1"},
    ]
    answer = await send(
        http, f"{receiver}/v1/batch", {"batch": batch}, headers=basic_auth(workspace.api_key)
    )
    assert answer.status == 200
    assert (await send(http, f"{receiver}/v1/track", {"userId": "u1"})).status == 401

    async with http.get(f"{receiver}/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        samples = _samples(await response.text())
    requests = "sextant_http_requests_total"
    calls = "sextant_calls_total"
    assert samples[(requests, frozenset({("route", "/v1/batch"), ("status", "200")}))] == 1
    assert samples[(requests, frozenset({("route", "/v1/track"), ("status", "401")}))] == 1
    assert samples[(calls, frozenset({("type", "track"), ("outcome", "accepted")}))] == 1
    assert samples[(calls, frozenset({("type", "any"), ("outcome", "skipped")}))] == 1
    assert samples[(calls, frozenset({("type", "any"), ("outcome", "rejected")}))] == 1
    assert samples[("sextant_broker_ready", frozenset())] == 1


async def test_openapi_document_lists_the_routes(
    receiver: str, http: aiohttp.ClientSession
) -> None:
    """/openapi.json is a valid OpenAPI 3 JSON document naming every route."""
    async with http.get(f"{receiver}/openapi.json") as response:
        assert response.status == 200
        document = msgspec.json.decode(await response.read())
    assert document["openapi"].startswith("3.")
    for path in (
        "/v1/identify",
        "/v1/track",
        "/v1/page",
        "/v1/screen",
        "/v1/group",
        "/v1/alias",
        "/v1/batch",
        "/v1/import",
        "/segment",
    ):
        assert "post" in document["paths"][path], path
    for path in ("/healthz", "/readyz", "/metrics"):
        assert "get" in document["paths"][path], path
    for ref in _refs(document):
        name = ref.removeprefix("#/components/schemas/")
        assert name in document["components"]["schemas"], ref


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []
