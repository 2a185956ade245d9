"""`/healthz`, `/readyz` and `/metrics`, the same for every process.

The receiver adds them to its own app; a worker serves them on `WORKER_PORT`. Readiness
is a set of named checks, all of which must hold; `/readyz` shows each.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import msgspec
import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = structlog.get_logger()

# Each check's name and whether it holds now.
Checks = Callable[[], dict[str, bool]]

_json = msgspec.json.Encoder()


def add_probes(
    app: web.Application,
    checks: Checks,
    registry: CollectorRegistry,
    before_scrape: Callable[[], None] | None = None,
) -> None:
    """Route the three probes; `before_scrape` refreshes gauges that are read, not counted."""

    async def healthz(request: web.Request) -> web.Response:
        return _json_response(200, {"ok": True})

    async def readyz(request: web.Request) -> web.Response:
        results = checks()
        ready = all(results.values())
        return _json_response(200 if ready else 503, {"ready": ready, **results})

    async def metrics(request: web.Request) -> web.Response:
        if before_scrape is not None:
            before_scrape()
        response = web.Response(body=generate_latest(registry))
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


@contextlib.asynccontextmanager
async def serving_probes(
    host: str,
    port: int,
    checks: Checks,
    registry: CollectorRegistry,
    before_scrape: Callable[[], None] | None = None,
) -> AsyncIterator[int]:
    """Serve the probes on host:port (0: any free port) until the block ends; yields the port."""
    app = web.Application()
    add_probes(app, checks, registry, before_scrape)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound = int(runner.addresses[0][1])
        log.info("probes_listening", port=bound)
        yield bound
    finally:
        await runner.cleanup()


def _json_response(status: int, body: dict[str, object]) -> web.Response:
    return web.Response(status=status, body=_json.encode(body), content_type="application/json")
