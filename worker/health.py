"""The worker's own small HTTP endpoint: /healthz, /readyz and /metrics for probes and scrapes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import structlog
from aiohttp import web
from prometheus_client import generate_latest

if TYPE_CHECKING:
    from worker.runner import Worker

log = structlog.get_logger()


@contextlib.asynccontextmanager
async def serving_health(worker: Worker) -> AsyncIterator[int]:
    """Serve on WORKER_PORT (0: any free port); yields the port."""

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(request: web.Request) -> web.Response:
        return web.json_response({"ready": worker.ready}, status=200 if worker.ready else 503)

    async def metrics(request: web.Request) -> web.Response:
        pool = worker.pool
        worker.metrics.pool_in_use.set(pool.get_size() - pool.get_idle_size())
        worker.metrics.pool_size.set(pool.get_size())
        worker.metrics.pool_max.set(pool.get_max_size())
        return web.Response(
            body=generate_latest(worker.metrics.registry), content_type="text/plain"
        )

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, worker.settings.host, worker.settings.worker_port)
        await site.start()
        port = runner.addresses[0][1]
        log.info("health_listening", port=port)
        yield port
    finally:
        await runner.cleanup()
