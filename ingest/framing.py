"""JSON answers for requests aiohttp refuses before any handler sees them.

A request aiohttp cannot parse (both Content-Length and Transfer-Encoding, a bad
header, a bad method) is answered by its protocol layer in plain text. Segment and
the platform's clients read every answer as JSON with a `message`, so the receiver's
server makes those answers JSON too, and logs them in one line, not a traceback.
"""

from __future__ import annotations

from http import HTTPStatus

import msgspec
import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

log = structlog.get_logger()
_json = msgspec.json.Encoder()


class _JsonErrorHandler(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp's own: too late for an answer
            raise ConnectionError("a response was already sent")
        if status >= 500:
            log.error("request_failed", status=status, error=repr(exc))
            reason = "internal error"
        else:
            # aiohttp's parser adds the offending bytes on lines of their own.
            reason = (message or HTTPStatus(status).phrase).splitlines()[0].rstrip(": ")
            log.info("request_unreadable", status=status, error=reason[:200])
        response = web.Response(
            status=status,
            body=_json.encode({"success": False, "message": reason}),
            content_type="application/json",
        )
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        # The same construction as aiohttp's Server, with the handler class above.
        return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)


def answer_unparsed_requests_in_json(runner: web.AppRunner) -> None:
    """Make a set-up runner's server answer unparsable requests in JSON."""
    server = runner.server
    assert server is not None, "call after runner.setup()"
    server.__class__ = _JsonErrorServer
