"""The design's floor for `make bench`: the bare app plus what the contract makes every
receiver do, and nothing of ours on top: one Kafka record per call, keyed by its identity,
published with acks=all through the receiver's own publisher, the answer after the ack.

No authentication, no judging, no normalising: a message goes to Kafka as it came. What
the receiver costs above this is our own code; what this costs above the bare app is the
design card's (aiokafka, acks=all, one record per call) on this machine.

`python -m bench.floor PORT`, with the receiver's environment (KAFKA_BOOTSTRAP_SERVERS,
KAFKA_TOPIC).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator

import msgspec
from aiohttp import web

from bench.bare import serve
from ingest.metrics import IngestMetrics
from ingest.producer import Publisher
from sextant.kafka import ensure_topics
from sextant.settings import Settings


class _Identity(msgspec.Struct):
    userId: str | None = None
    anonymousId: str | None = None


_decode_batch = msgspec.json.Decoder(dict[str, list[msgspec.Raw]])
_decode_identity = msgspec.json.Decoder(_Identity)
_encode = msgspec.json.Encoder()
_PUBLISHER = web.AppKey("publisher", Publisher)


def _record(raw: msgspec.Raw) -> tuple[bytes, bytes]:
    """A call's record: its identity as key, the message as sent as value."""
    who = _decode_identity.decode(raw)
    return (who.userId or who.anonymousId or "").encode(), bytes(raw)


def make_app(settings: Settings) -> web.Application:
    async def batch(request: web.Request) -> web.Response:
        calls = _decode_batch.decode(await request.read())["batch"]
        await request.app[_PUBLISHER].publish([_record(raw) for raw in calls])
        return web.Response(
            body=_encode.encode({"success": True, "accepted": len(calls)}),
            content_type="application/json",
        )

    async def one(request: web.Request) -> web.Response:
        await request.app[_PUBLISHER].publish([_record(msgspec.Raw(await request.read()))])
        return web.Response(
            body=_encode.encode({"success": True, "accepted": 1}), content_type="application/json"
        )

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def publisher(app: web.Application) -> AsyncIterator[None]:
        await ensure_topics(settings)
        app[_PUBLISHER] = Publisher(settings, IngestMetrics())
        await app[_PUBLISHER].start()
        try:
            yield
        finally:
            await app[_PUBLISHER].stop()

    app = web.Application()
    app.cleanup_ctx.append(publisher)
    app.router.add_post("/v1/batch", batch)
    app.router.add_post("/segment", one)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    serve(make_app(Settings.from_env()), int(sys.argv[1]))


if __name__ == "__main__":
    main()
