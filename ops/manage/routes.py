"""The management API's routes: each calls the same operation of `ops` as the command line
does, on one connection, and answers with what it returns. `{ws}` is a workspace's name;
every operation is handed that name and touches no other workspace."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import msgspec
from aiohttp import web

from ops import attributes, connectors, keys, lookup, privacy, workspaces
from ops.manage import requests as bodies
from ops.pages import Page, PageRequest
from ops.warnings import list_warnings
from sextant.db import Conn
from sextant.errors import InvalidInput

POOL = web.AppKey("pool", asyncpg.Pool)
B = TypeVar("B", bound=msgspec.Struct)
_json = msgspec.json.Encoder()

Handler = Callable[[web.Request], Awaitable[web.Response]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    body: type[msgspec.Struct] | None = None
    paged: bool = False
    query: tuple[str, ...] = ()  # query parameters besides limit and cursor
    created: bool = False  # answers 201


def answer(value: Any, status: int = 200) -> web.Response:
    if isinstance(value, Page):
        value = {"items": value.items, "next_cursor": value.next_cursor, **value.extra}
    return web.Response(status=status, body=_json.encode(value), content_type="application/json")


async def body_of(request: web.Request, struct: type[B]) -> B:
    try:
        return msgspec.json.decode(await request.read(), type=struct)
    except (msgspec.ValidationError, msgspec.DecodeError) as e:
        raise InvalidInput(f"request body: {e}") from e


def page_of(request: web.Request) -> PageRequest:
    return PageRequest.of(request.query.get("limit"), request.query.get("cursor"))


def _since(request: web.Request) -> datetime | None:
    raw = request.query.get("since")
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError as e:
        raise InvalidInput(f"since: {raw!r} is not an ISO 8601 time") from e
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # no zone: UTC


def _listing(operation: Callable[[Conn, str, PageRequest], Awaitable[Page[Any]]]) -> Handler:
    """The route that lists a workspace's things with `operation`, a page at a time."""

    async def handler(request: web.Request) -> web.Response:
        ws = request.match_info["ws"]
        return answer(await _run(request, lambda c: operation(c, ws, page_of(request))))

    return handler


def _connector_options(body: bodies.ConnectorCreate | bodies.ConnectorChange) -> dict[str, Any]:
    return {
        "block_free_email": body.block_free_email_users,
        "trusted_domains": body.trusted_domains,
        "shared_secret": body.shared_secret,
    }


async def _run(request: web.Request, operation: Callable[[Conn], Awaitable[Any]]) -> Any:
    async with request.app[POOL].acquire() as conn:
        return await operation(conn)


# --- workspaces ----------------------------------------------------------------------------


async def list_workspaces(request: web.Request) -> web.Response:
    return answer(await _run(request, lambda c: workspaces.list_workspaces(c, page_of(request))))


async def create_workspace(request: web.Request) -> web.Response:
    body = await body_of(request, bodies.WorkspaceCreate)
    await _run(request, lambda c: workspaces.create_workspace(c, body.name))
    return answer({"name": body.name}, 201)


async def show_limit(request: web.Request) -> web.Response:
    ws = request.match_info["ws"]
    rate = await _run(request, lambda c: workspaces.intake_rate(c, ws))
    return answer({"calls_per_second": rate or 0, "default": rate is None})


async def set_limit(request: web.Request) -> web.Response:
    ws, body = request.match_info["ws"], await body_of(request, bodies.LimitSet)
    await _run(request, lambda c: workspaces.set_intake_rate(c, ws, body.calls_per_second))
    return await show_limit(request)


# --- connectors and keys -------------------------------------------------------------------


async def create_connector(request: web.Request) -> web.Response:
    ws, body = request.match_info["ws"], await body_of(request, bodies.ConnectorCreate)
    options = _connector_options(body)
    created = await _run(
        request, lambda c: connectors.create_connector(c, ws, body.name, **options)
    )
    return answer(created, 201)


async def change_connector(request: web.Request) -> web.Response:
    ws, name = request.match_info["ws"], request.match_info["name"]
    body = await body_of(request, bodies.ConnectorChange)
    options = _connector_options(body)
    changed = await _run(request, lambda c: connectors.change_connector(c, ws, name, **options))
    return answer(changed)


async def create_key(request: web.Request) -> web.Response:
    ws, body = request.match_info["ws"], await body_of(request, bodies.KeyCreate)
    created = await _run(request, lambda c: keys.add_key(c, ws, body.connector))
    # The only time a whole key leaves Sextant: only its hash is stored.
    shown = {"api_key": created.api_key, "prefix": created.key_prefix, "connector": body.connector}
    return answer(shown, 201)


async def revoke_key(request: web.Request) -> web.Response:
    ws, prefix = request.match_info["ws"], request.match_info["prefix"]
    revoked = await _run(request, lambda c: keys.revoke_key(c, prefix, workspace=ws))
    return answer({"revoked": revoked})


# --- attributes, events, warnings ------------------------------------------------------------


async def define_attribute(request: web.Request) -> web.Response:
    ws, body = request.match_info["ws"], await body_of(request, bodies.AttributeDefine)
    await _run(
        request,
        lambda c: attributes.define(c, ws, body.entity, body.event or "", body.name, body.type),
    )
    return answer(msgspec.structs.asdict(body), 201)


async def list_ingestion_warnings(request: web.Request) -> web.Response:
    ws, kind, since = request.match_info["ws"], request.query.get("kind") or None, _since(request)
    return answer(
        await _run(request, lambda c: list_warnings(c, ws, kind, since, page_of(request)))
    )


# --- privacy and identity lists ---------------------------------------------------------------


async def suppress(request: web.Request) -> web.Response:
    ws, body = request.match_info["ws"], await body_of(request, bodies.SuppressionCreate)
    added = await _run(request, lambda c: privacy.suppress(c, ws, body.user_id))
    return answer({"user_id": body.user_id, "added": added}, 201 if added else 200)


async def unsuppress(request: web.Request) -> web.Response:
    ws, user_id = request.match_info["ws"], request.match_info["user_id"]
    await _run(request, lambda c: privacy.unsuppress(c, ws, user_id))
    return answer({"user_id": user_id, "suppressed": False})


async def block_identifier(request: web.Request) -> web.Response:
    ws, body = request.match_info["ws"], await body_of(request, bodies.BlockedIdentifierCreate)
    kept = await _run(request, lambda c: privacy.block_identifier(c, ws, body.value))
    return answer({"value": kept}, 201)


async def unblock_identifier(request: web.Request) -> web.Response:
    ws, value = request.match_info["ws"], request.match_info["value"]
    await _run(request, lambda c: privacy.unblock_identifier(c, ws, value))
    return answer({"value": value, "blocked": False})


async def show_user(request: web.Request) -> web.Response:
    ws, user_id = request.match_info["ws"], request.match_info["user_id"]
    return answer(await _run(request, lambda c: lookup.user_profile(c, ws, user_id)))


_WS = "/manage/v1/workspaces/{ws}"
ROUTES = [
    Route("GET", "/manage/v1/workspaces", list_workspaces, "list workspaces", paged=True),
    Route("POST", "/manage/v1/workspaces", create_workspace, "create a workspace",
          bodies.WorkspaceCreate, created=True),
    Route("GET", f"{_WS}/connectors", _listing(connectors.list_connectors), "list connectors",
          paged=True),
    Route("POST", f"{_WS}/connectors", create_connector, "create a connector",
          bodies.ConnectorCreate, created=True),
    Route("PATCH", f"{_WS}/connectors/{{name}}", change_connector,
          "change a connector's free-email blocking, trusted domains or shared secret",
          bodies.ConnectorChange),
    Route("GET", f"{_WS}/keys", _listing(keys.list_keys),
          "list keys by prefix (never whole keys)", paged=True),
    Route("POST", f"{_WS}/keys", create_key,
          "create a key for a connector: the whole key is in this answer and never again",
          bodies.KeyCreate, created=True),
    Route("DELETE", f"{_WS}/keys/{{prefix}}", revoke_key,
          "revoke a key: receivers refuse it with 403 within 5 s"),
    Route("GET", f"{_WS}/attributes", _listing(attributes.list_attributes),
          "list attribute definitions", paged=True),
    Route("POST", f"{_WS}/attributes", define_attribute, "define an attribute's type",
          bodies.AttributeDefine, created=True),
    Route("GET", f"{_WS}/event-definitions", _listing(attributes.list_event_definitions),
          "event names with first and last seen", paged=True),
    Route("GET", f"{_WS}/warnings", list_ingestion_warnings,
          "ingestion warnings, newest first", paged=True, query=("kind", "since")),
    Route("GET", f"{_WS}/suppressions", _listing(privacy.suppressed), "suppressed userIds",
          paged=True),
    Route("POST", f"{_WS}/suppressions", suppress,
          "suppress a userId: receivers skip its calls within 5 s", bodies.SuppressionCreate,
          created=True),
    Route("DELETE", f"{_WS}/suppressions/{{user_id}}", unsuppress, "take a userId's calls again"),
    Route("GET", f"{_WS}/blocked-identifiers", _listing(privacy.blocked_identifiers),
          "the workspace's own unusable identifier values", paged=True),
    Route("POST", f"{_WS}/blocked-identifiers", block_identifier,
          "treat a value as no identity", bodies.BlockedIdentifierCreate, created=True),
    Route("DELETE", f"{_WS}/blocked-identifiers/{{value}}", unblock_identifier,
          "accept a blocked value again"),
    Route("GET", f"{_WS}/limit", show_limit, "the workspace's intake rate"),
    Route("PUT", f"{_WS}/limit", set_limit,
          "set the intake rate (calls per second; 0 puts back the default)", bodies.LimitSet),
    Route("GET", f"{_WS}/users/{{user_id}}", show_user,
          "a user's profile, anonymous ids, accounts, audiences, last 50 events and page views"),
]  # fmt: skip
