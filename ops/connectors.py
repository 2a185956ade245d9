"""Connectors: a workspace's Segment sources, each with its keys and its options (free-email
blocking, trusted domains, a shared secret for signed bodies)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from ops.pages import EVERYTHING, Order, Page, PageRequest, fetch_page
from ops.workspaces import workspace_id
from sextant.db import Conn
from sextant.errors import AlreadyExists, NotFound


@dataclass(frozen=True, slots=True)
class Connector:
    name: str
    block_free_email_users: bool
    trusted_domains: list[str]
    signed: bool  # has a shared secret; the secret itself is never read back
    created_at: datetime


_COLUMNS = """name, block_free_email_users, trusted_domains, shared_secret IS NOT NULL AS signed,
              created_at"""


async def create_connector(
    conn: Conn,
    workspace: str,
    name: str,
    *,
    block_free_email: bool = False,
    trusted_domains: list[str] | None = None,
    shared_secret: str | None = None,
) -> Connector:
    ws = await workspace_id(conn, workspace)
    row = await conn.fetchrow(
        f"""INSERT INTO connectors
                (workspace_id, name, block_free_email_users, trusted_domains, shared_secret)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (workspace_id, name) DO NOTHING
            RETURNING {_COLUMNS}""",
        ws,
        name,
        block_free_email,
        [d.lower() for d in trusted_domains or []],
        shared_secret,
    )
    if row is None:
        raise AlreadyExists(f"connector {name!r} exists already in {workspace!r}")
    return _connector(row)


async def change_connector(
    conn: Conn,
    workspace: str,
    name: str,
    *,
    block_free_email: bool | None = None,
    trusted_domains: list[str] | None = None,
    shared_secret: str | None = None,
) -> Connector:
    """Change the options given; those left out keep their value. Receivers see the change
    within 5 seconds, with the keys."""
    ws = await workspace_id(conn, workspace)
    row = await conn.fetchrow(
        f"""UPDATE connectors SET
                block_free_email_users = coalesce($3, block_free_email_users),
                trusted_domains = coalesce($4, trusted_domains),
                shared_secret = coalesce($5, shared_secret)
             WHERE workspace_id = $1 AND name = $2
            RETURNING {_COLUMNS}""",
        ws,
        name,
        block_free_email,
        None if trusted_domains is None else [d.lower() for d in trusted_domains],
        shared_secret,
    )
    if row is None:
        raise NotFound(f"no connector named {name!r} in {workspace!r}")
    return _connector(row)


async def list_connectors(
    conn: Conn, workspace: str, page: PageRequest = EVERYTHING
) -> Page[Connector]:
    ws = await workspace_id(conn, workspace)
    rows, cursor = await fetch_page(
        conn,
        f"SELECT {_COLUMNS}, created_at AS page_time, name AS page_key "
        "FROM connectors WHERE workspace_id = $1",
        [ws],
        Order("created_at", "name"),
        page,
    )
    return Page([_connector(r) for r in rows], cursor)


def _connector(row: asyncpg.Record) -> Connector:
    return Connector(
        row["name"], row["block_free_email_users"], list(row["trusted_domains"]), row["signed"],
        row["created_at"],
    )  # fmt: skip
