"""A client of the management API that sends its token and checks every answer is JSON."""

from __future__ import annotations

import dataclasses
from typing import Any

import aiohttp
import msgspec

TOKEN = "test-manage-token-0123456789"


@dataclasses.dataclass(frozen=True)
class Manage:
    """The management API under test, and a client that sends its token."""

    url: str
    http: aiohttp.ClientSession

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = TOKEN,
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        data = raw if raw is not None else (None if body is None else msgspec.json.encode(body))
        async with self.http.request(method, self.url + path, data=data, headers=headers) as r:
            assert r.content_type == "application/json", (r.status, await r.text())
            answer = msgspec.json.decode(await r.read())
        if r.status >= 400:
            assert isinstance(answer["message"], str), answer
            assert answer["message"]
        return r.status, answer
