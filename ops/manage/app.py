"""The management API's composition root: the Bearer token, errors as JSON, the routes and
their OpenAPI document."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from ops.manage.routes import POOL, ROUTES, Route, answer
from sextant.db import create_pool
from sextant.errors import AdminError, AlreadyExists, ConfigError, NotFound
from sextant.probes import add_probes
from sextant.settings import Settings

log = structlog.get_logger()
SETTINGS = web.AppKey("settings", Settings)
OPENAPI_PATH = "/manage/openapi.json"
_PROBES = frozenset({"/healthz", "/readyz", "/metrics"})


def create_app(settings: Settings) -> web.Application:
    if not settings.manage_token:
        raise ConfigError("MANAGE_TOKEN is not set: the management API does not run without one")
    app = web.Application(middlewares=[_errors, _bearer(settings.manage_token)])
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_pool_ctx)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
    document = openapi_document(ROUTES)

    async def openapi(request: web.Request) -> web.Response:
        return answer(document)

    app.router.add_get(OPENAPI_PATH, openapi)
    add_probes(app, lambda: {"database": POOL in app}, CollectorRegistry())
    return app


async def _pool_ctx(app: web.Application) -> AsyncIterator[None]:
    pool = await create_pool(app[SETTINGS], max_size=4, min_size=0)
    app[POOL] = pool
    yield
    await pool.close()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _bearer(token: str) -> Any:
    # Both sides hashed first, so the comparison takes the same time whatever the length.
    expected = hashlib.sha256(token.encode()).digest()

    @web.middleware
    async def bearer(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in _PROBES:  # for the orchestrator; they show no data
            return await handler(request)
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        digest = hashlib.sha256(given.strip().encode()).digest()
        if not (hmac.compare_digest(digest, expected) and scheme.lower() == "bearer"):
            return _error(401, "a valid `Authorization: Bearer <MANAGE_TOKEN>` is required")
        return await handler(request)

    return bearer


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer is JSON: 404 for what does not exist, 409 for what does already, 422 for
    a bad field or body."""
    try:
        return await handler(request)
    except NotFound as e:
        return _error(404, e.message)
    except AlreadyExists as e:
        return _error(409, e.message)
    except AdminError as e:
        return _error(422, e.message)
    except web.HTTPException as e:
        allow = {"Allow": e.headers["Allow"]} if "Allow" in e.headers else {}
        response = _error(e.status, e.reason)
        response.headers.update(allow)
        return response
    except Exception:
        log.exception("manage_request_failed", path=request.path)
        return _error(500, "internal error")


def _error(status: int, message: str) -> web.Response:
    return answer({"message": message}, status)


def openapi_document(routes: list[Route]) -> dict[str, Any]:
    structs = [r.body for r in routes if r.body is not None]
    schemas, components = msgspec.json.schema_components(
        structs, ref_template="#/components/schemas/{name}"
    )
    refs = dict(zip(structs, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Sextant management API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": {**components, "Error": _ERROR_SCHEMA},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


_ERROR_SCHEMA = {"type": "object", "properties": {"message": {"type": "string"}}}
_ERRORS = {
    "401": "no or a wrong Bearer token",
    "404": "the workspace, or what the path names, does not exist",
    "409": "what would be created exists already",
    "422": "a bad field, body or query parameter",
}


def _operation(route: Route, refs: dict[type[msgspec.Struct], Any]) -> dict[str, Any]:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _path_parameters(route.path)
    ]
    query: list[tuple[str, str]] = (
        [("limit", "integer"), ("cursor", "string")] if route.paged else []
    )
    query += [(name, "string") for name in route.query]
    parameters += [{"name": n, "in": "query", "schema": {"type": t}} for n, t in query]
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    operation: dict[str, Any] = {
        "summary": route.summary,
        "parameters": parameters,
        "responses": {
            "201" if route.created else "200": {"description": "done"},
            **{code: {"description": text, **error} for code, text in _ERRORS.items()},
        },
    }
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[route.body]}},
        }
    return operation


def _path_parameters(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


@contextlib.asynccontextmanager
async def running(settings: Settings, host: str, port: int) -> AsyncIterator[web.AppRunner]:
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, reuse_address=True).start()
        yield runner
    finally:
        await runner.cleanup()
