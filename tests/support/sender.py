"""Sending calls to a receiver, and reading back what it answered and what reached Kafka."""

from __future__ import annotations

import gzip as gzip_module
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec

from sextant.settings import Settings
from tests.support.helpers import read_topic


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: Mapping[str, str]


async def send(
    http: aiohttp.ClientSession,
    url: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    gzip: bool = False,
) -> Answer:
    """POST `body` as JSON (or `raw` bytes as they are); every answer must be a JSON object,
    and every refusal must carry a "message"."""
    data = raw if raw is not None else msgspec.json.encode(body)
    sent_headers = {"Content-Type": "application/json", **(headers or {})}
    if gzip:
        data = gzip_module.compress(data)
        sent_headers["Content-Encoding"] = "gzip"
    async with http.post(url, data=data, headers=sent_headers) as response:
        assert response.content_type == "application/json", response.content_type
        answer = Answer(
            response.status, msgspec.json.decode(await response.read()), response.headers
        )
    assert isinstance(answer.body, dict)
    if answer.status != 200:
        assert isinstance(answer.body.get("message"), str), answer.body
        assert answer.body["message"]
    return answer


async def kafka_messages(
    settings: Settings, expected: int
) -> list[tuple[bytes | None, dict[str, Any]]]:
    """Every (key, decoded value) in the test's topic, once `expected` have arrived."""
    records = await read_topic(settings, expected)
    return [(r.key, msgspec.json.decode(r.value)) for r in records]
