"""The yardstick for `make bench`: a bare aiohttp app that decodes the same bodies with
msgspec and answers as the receiver does, but authenticates nothing and produces nothing."""

from __future__ import annotations

import sys
from typing import Any

import msgspec
from aiohttp import web

_decode_batch = msgspec.json.Decoder(dict[str, list[dict[str, Any]]])
_decode_one = msgspec.json.Decoder(dict[str, Any])
_encode = msgspec.json.Encoder()


async def batch(request: web.Request) -> web.Response:
    body = _decode_batch.decode(await request.read())
    return web.Response(
        body=_encode.encode({"success": True, "accepted": len(body["batch"])}),
        content_type="application/json",
    )


async def one(request: web.Request) -> web.Response:
    _decode_one.decode(await request.read())
    return web.Response(
        body=_encode.encode({"success": True, "accepted": 1}), content_type="application/json"
    )


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def main() -> None:
    import uvloop

    app = web.Application()
    app.router.add_post("/v1/batch", batch)
    app.router.add_post("/v1/track", one)
    app.router.add_get("/healthz", healthz)
    web.run_app(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
