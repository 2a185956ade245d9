"""`sextant serve`: the receiver until SIGINT or SIGTERM."""

from __future__ import annotations

import structlog

from ingest.app import running
from sextant import runtime
from sextant.settings import Settings

log = structlog.get_logger()


async def serve(settings: Settings) -> int:
    async with running(settings, settings.host, settings.port):
        log.info("listening", host=settings.host, port=settings.port)
        runtime.tune_collector_for_throughput()
        sig = await runtime.wait_for_stop_signal()
        # Leaving the block stops accepting, lets in-flight requests finish, then closes.
        log.info("stopping", signal=sig.name)
    log.info("stopped")
    return 0
