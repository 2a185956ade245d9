"""The receiver's composition root: routes, handlers and the resources they share."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import structlog
from aiohttp import web

from ingest.auth import check_origin, check_signature, key_from_headers
from ingest.door import Arrival
from ingest.framing import answer_unparsed_requests_in_json
from ingest.intake import BodyShape, Intake, decompress, parse_body, prepare
from ingest.keys import Credential, KeyStore
from ingest.limits import IntakeLimiter, retry_after_header
from ingest.lists import ListStore, WorkspaceLists
from ingest.metrics import IngestMetrics
from ingest.openapi import openapi_document
from ingest.producer import Publisher
from ingest.wire import MAX_REQUEST_BYTES
from sextant.calls import Stamp
from sextant.db import create_pool, reload_forever
from sextant.errors import (
    Forbidden,
    InvalidRequest,
    MissingKey,
    OverLimit,
    RequestRejected,
    TooLarge,
    Unavailable,
    UnsupportedType,
)
from sextant.kafka import ensure_topics
from sextant.probes import add_probes
from sextant.settings import Settings

log = structlog.get_logger()

_STATUS: dict[type[RequestRejected], int] = {
    InvalidRequest: 400,
    MissingKey: 401,
    Forbidden: 403,
    TooLarge: 413,
    OverLimit: 429,
    UnsupportedType: 501,
    Unavailable: 503,
}
_RETRY_AFTER_SECONDS = "2"
_json = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Receiver:
    """What every handler needs, built once per app."""

    settings: Settings
    keys: KeyStore
    lists: ListStore
    publisher: Publisher
    metrics: IngestMetrics
    limiter: IntakeLimiter

    @property
    def sharing(self) -> int:
        """How many receivers share each workspace's rate: configured, else counted."""
        return self.settings.receiver_replicas or self.lists.live_receivers

    @property
    def future_tolerance(self) -> timedelta:
        return timedelta(seconds=self.settings.future_tolerance_seconds)


RECEIVER = web.AppKey("receiver", Receiver)
SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", IngestMetrics)


def create_app(settings: Settings) -> web.Application:
    """The receiver app; `running` serves it as it must be served."""
    # Bodies are read by `_read_body` with our own limit; this only keeps aiohttp out of the way.
    app = web.Application(middlewares=[_errors], client_max_size=2 * MAX_REQUEST_BYTES)
    app[SETTINGS] = settings
    app[METRICS] = IngestMetrics()
    app.cleanup_ctx.append(_receiver_ctx)
    for path, shape, default_type in _ROUTES:
        app.router.add_post(path, _handler(path, shape, default_type))
        app.router.add_route("OPTIONS", path, _preflight)

    def readiness() -> dict[str, bool]:
        receiver = app.get(RECEIVER)
        if receiver is None:
            return {"broker": False, "keys": False}
        return {
            "broker": receiver.publisher.broker_ok,
            "keys": receiver.keys.loaded and receiver.lists.loaded,
        }

    def sharing() -> float:
        receiver = app.get(RECEIVER)
        return receiver.sharing if receiver is not None else 0

    app[METRICS].receivers.set_function(sharing)
    add_probes(app, readiness, app[METRICS].registry)
    app.router.add_get("/openapi.json", _openapi)
    return app


_ROUTES: list[tuple[str, BodyShape, str | None]] = [
    *(
        (f"/v1/{t}", BodyShape.SINGLE, t)
        for t in ("identify", "track", "page", "screen", "group", "alias")
    ),
    ("/v1/batch", BodyShape.BATCH, None),
    ("/v1/import", BodyShape.BATCH, None),
    ("/segment", BodyShape.PARTNER, None),
]
# Browsers may call these (and read their answers); metrics and probes stay server-side.
_CALL_ROUTES = frozenset(path for path, _, _ in _ROUTES)


async def _receiver_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    pool = await create_pool(settings, max_size=2)
    keys = KeyStore(pool)
    lists = ListStore(pool, settings.key_refresh_seconds)
    publisher = Publisher(settings, app[METRICS])
    try:
        await keys.load()
        await lists.load()
        await ensure_topics(settings)
        await publisher.start()
        app[RECEIVER] = Receiver(settings, keys, lists, publisher, app[METRICS], IntakeLimiter())
        tasks = [
            asyncio.create_task(
                reload_forever(keys.load, settings.key_refresh_seconds, "key_reload_failed"),
                name="key-refresh",
            ),
            asyncio.create_task(
                reload_forever(lists.load, settings.key_refresh_seconds, "lists_reload_failed"),
                name="lists-refresh",
            ),
            asyncio.create_task(publisher.probe_forever(), name="broker-probe"),
        ]
        log.info("receiver_ready", topic=settings.kafka_topic)
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await publisher.stop()
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            await lists.forget_this_receiver()
        await pool.close()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _handler(route: str, shape: BodyShape, default_type: str | None) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        receiver = request.app[RECEIVER]
        raw = await _read_body(request)
        body = decompress(raw, request.headers.get("Content-Encoding"))
        header_key = key_from_headers(request.headers)
        credential = None
        if header_key is not None:
            credential = await _authorize(receiver, header_key, request, raw)
        parsed = parse_body(body, shape)
        if credential is None:
            credential = await _authorize(receiver, parsed.write_key, request, raw)
        structlog.contextvars.bind_contextvars(workspace=credential.workspace_id)
        lists = receiver.lists.of(credential.workspace_id)
        _hold_to_rate(receiver, credential.workspace_id, len(parsed.messages), lists)
        arrival = Arrival(
            received_at=datetime.now(UTC),
            correct_clock=shape is not BodyShape.PARTNER,
            future_tolerance=receiver.future_tolerance,
            lists=lists,
        )
        intake = prepare(
            parsed,
            arrival,
            default_type=default_type,
            stamp=Stamp(credential.workspace_id, credential.connector_id),
            destination=receiver.settings.destination_name,
        )
        await receiver.publisher.publish(intake.records)
        _count(receiver.metrics, intake)
        return _reply(
            200,
            {
                "success": True,
                "accepted": len(intake.records),
                "skipped": intake.skipped,
                "rejected": [{"index": i, "message": m} for i, m in intake.rejected],
            },
        )

    handle.__name__ = f"post_{route.strip('/').replace('/', '_')}"
    return handle


async def _authorize(
    receiver: Receiver, key: str | None, request: web.Request, raw: bytes
) -> Credential:
    credential = await receiver.keys.authenticate(key)
    check_origin(request.headers.get("Origin"), credential.trusted_domains)
    check_signature(raw, request.headers.get("X-Signature"), credential.shared_secret)
    return credential


def _hold_to_rate(receiver: Receiver, workspace_id: int, calls: int, lists: WorkspaceLists) -> None:
    """Refuse the whole request with 429 when the workspace is over its intake rate,
    before any of it is judged or forwarded."""
    limit = lists.calls_per_second or receiver.settings.workspace_calls_per_second
    wait = receiver.limiter.take(workspace_id, calls, limit / receiver.sharing, time.monotonic())
    if wait is not None:
        receiver.metrics.limited_counter(workspace_id).inc(calls)
        raise OverLimit(
            f"this workspace is over its intake rate of {limit} calls per second",
            retry_after_header(wait),
        )


async def _read_body(request: web.Request) -> bytes:
    """Read at most the request limit; a larger body is refused before it is all in memory."""
    if request.content_length is not None and request.content_length > MAX_REQUEST_BYTES:
        raise TooLarge(f"request is over {MAX_REQUEST_BYTES // 1024} KB")
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            raise TooLarge(f"request is over {MAX_REQUEST_BYTES // 1024} KB")
    return bytes(body)


def _count(metrics: IngestMetrics, intake: Intake) -> None:
    for call_type, n in Counter(intake.types).items():  # one update per type, not per call
        metrics.call_counter(call_type, "accepted").inc(n)
    if intake.skipped:
        metrics.call_counter("any", "skipped").inc(intake.skipped)
    if intake.rejected:
        metrics.call_counter("any", "rejected").inc(len(intake.rejected))


def _reply(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status, body=_json.encode(body), content_type="application/json", headers=headers
    )


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer is JSON; refusals map to their status here and nowhere else."""
    route = (
        request.match_info.route.resource.canonical if request.match_info.route.resource else "?"
    )
    started = time.perf_counter()
    # aiohttp serves a keep-alive connection's requests in one task: start each one clean.
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(route=route)
    try:
        response = await handler(request)
    except RequestRejected as e:
        response = _refusal(request, e)
    except web.HTTPException as e:  # unknown route, wrong method: keep its Allow header
        allow = {"Allow": e.headers["Allow"]} if "Allow" in e.headers else None
        response = _reply(e.status, {"success": False, "message": e.reason}, allow)
    except Exception:
        log.exception("request_failed")
        response = _reply(500, {"message": "internal error"})
    if route in _CALL_ROUTES and (origin := request.headers.get("Origin")) is not None:
        # Browsers may read the answer; whether the origin may send at all is the
        # connector's trusted domains, checked with the key (403 otherwise).
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    request.app[METRICS].request_counter(route, response.status).inc()
    if response.status >= 500:
        log.warning(
            "request_refused",
            status=response.status,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
    return response


def _refusal(request: web.Request, e: RequestRejected) -> web.Response:
    status = _STATUS[type(e)]
    body: dict[str, Any] = {"success": False, "message": e.message}
    if isinstance(e, InvalidRequest) and e.rejected:
        body["rejected"] = [{"index": i, "message": m} for i, m in e.rejected]
        request.app[METRICS].call_counter("any", "rejected").inc(len(e.rejected))
    retry_after = str(e.retry_after) if isinstance(e, OverLimit) else _RETRY_AFTER_SECONDS
    headers = {"Retry-After": retry_after} if e.retriable else None
    return _reply(status, body, headers)


# A preflight carries no key, so it cannot know the connector: it allows what a Segment
# client sends, and the POST that follows is checked against the trusted domains.
_PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": (
        "Authorization, Content-Type, Content-Encoding, X-Write-Key, X-Signature"
    ),
    "Access-Control-Max-Age": "86400",
}


async def _preflight(request: web.Request) -> web.Response:
    """CORS preflight for browser sources (analytics.js sending straight to us)."""
    return _reply(200, {"ok": True}, _PREFLIGHT_HEADERS)


async def _openapi(request: web.Request) -> web.Response:
    return _reply(200, openapi_document())


@contextlib.asynccontextmanager
async def running(settings: Settings, host: str, port: int) -> AsyncIterator[web.AppRunner]:
    """Serve the receiver on host:port until the block ends.

    aiohttp must not inflate bodies itself: the signature covers the body as sent, and
    `decompress` caps what a gzip body may grow to.
    """
    runner = web.AppRunner(create_app(settings), auto_decompress=False, access_log=None)
    await runner.setup()
    answer_unparsed_requests_in_json(runner)
    try:
        await web.TCPSite(runner, host, port, reuse_address=True).start()
        yield runner
    finally:
        await runner.cleanup()
