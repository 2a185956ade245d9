"""The yardsticks for `make bench`: a bare aiohttp app that decodes the same bodies with
msgspec and answers as the receiver does, but authenticates nothing and produces nothing.

`python -m bench.bare PORT [ACK_MS]`: with ACK_MS, each request also waits, as the
receiver does, for a shared acknowledgement that comes ACK_MS after the first request of
its window (a broker acknowledging a group-committed batch, with no broker). That prices
the "answer only after the broker acks" shape on its own, apart from any work of ours.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import msgspec
from aiohttp import web

_decode_batch = msgspec.json.Decoder(dict[str, list[dict[str, Any]]])
_decode_one = msgspec.json.Decoder(dict[str, Any])
_encode = msgspec.json.Encoder()


class _SimulatedAcks:
    """One shared future per window, resolved `delay` seconds after the window opens."""

    def __init__(self, delay: float) -> None:
        self._delay = delay
        self._window: asyncio.Future[None] | None = None

    async def wait(self) -> None:
        shared = self._window
        loop = asyncio.get_running_loop()
        if shared is None or shared.done():
            shared = self._window = loop.create_future()
            loop.call_later(self._delay, shared.set_result, None)
        # A private waiter, as the receiver's: cancelling a request leaves the shared one.
        waiter: asyncio.Future[None] = loop.create_future()
        shared.add_done_callback(lambda _: _resolve(waiter))
        await waiter


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def make_app(ack_ms: float | None) -> web.Application:
    acks = _SimulatedAcks(ack_ms / 1000) if ack_ms is not None else None

    async def batch(request: web.Request) -> web.Response:
        body = _decode_batch.decode(await request.read())
        if acks is not None:
            await acks.wait()
        return web.Response(
            body=_encode.encode({"success": True, "accepted": len(body["batch"])}),
            content_type="application/json",
        )

    async def one(request: web.Request) -> web.Response:
        _decode_one.decode(await request.read())
        if acks is not None:
            await acks.wait()
        return web.Response(
            body=_encode.encode({"success": True, "accepted": 1}), content_type="application/json"
        )

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/v1/batch", batch)
    app.router.add_post("/v1/track", one)
    app.router.add_post("/segment", one)
    app.router.add_get("/healthz", healthz)
    return app


def serve(app: web.Application, port: int) -> None:
    """Serve a yardstick app on loopback as the receiver is served: uvloop, no access log."""
    import uvloop

    web.run_app(
        app, host="127.0.0.1", port=port, access_log=None, print=None, loop=uvloop.new_event_loop()
    )


def main() -> None:
    ack_ms = float(sys.argv[2]) if len(sys.argv) > 2 else None
    serve(make_app(ack_ms), int(sys.argv[1]))


if __name__ == "__main__":
    main()
