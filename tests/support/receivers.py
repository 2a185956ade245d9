"""Several receivers in the test's own process, on ports of their own."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from ingest.app import running
from ops.devstack import free_port
from sextant.settings import Settings


@contextlib.asynccontextmanager
async def receivers(settings: Settings, count: int) -> AsyncIterator[list[str]]:
    """`count` running receivers; yields their base URLs."""
    async with contextlib.AsyncExitStack() as stack:
        urls = []
        for _ in range(count):
            port = free_port()
            await stack.enter_async_context(running(settings, "127.0.0.1", port))
            urls.append(f"http://127.0.0.1:{port}")
        yield urls
