"""`sextant manage`: the management API until SIGINT or SIGTERM."""

from __future__ import annotations

import structlog

from ops.manage.app import running
from sextant import runtime
from sextant.errors import ConfigError
from sextant.settings import Settings

log = structlog.get_logger()


async def serve_management(settings: Settings) -> int:
    if settings.manage_port == settings.port and settings.manage_port != 0:
        raise ConfigError("MANAGE_PORT must differ from PORT: never on the receiver's port")
    async with running(settings, settings.host, settings.manage_port):
        log.info("management_api_listening", host=settings.host, port=settings.manage_port)
        sig = await runtime.wait_for_stop_signal()
        log.info("stopping", signal=sig.name)
    return 0
