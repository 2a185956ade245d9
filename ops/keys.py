"""API keys and the connectors they belong to: what operators create, list and revoke."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ops.pages import EVERYTHING, Order, Page, PageRequest, fetch_page
from ops.workspaces import workspace_id
from sextant.apikeys import KEY_PREFIX_LENGTH, hash_key, key_prefix, new_key
from sextant.db import Conn
from sextant.errors import InvalidInput, NotFound

DEFAULT_CONNECTOR = "default"


@dataclass(frozen=True, slots=True)
class CreatedKey:
    workspace: str
    connector: str
    api_key: str
    key_prefix: str
    workspace_id: int
    connector_id: int


@dataclass(frozen=True, slots=True)
class KeyInfo:
    key_prefix: str
    connector: str
    created_at: datetime
    revoked_at: datetime | None


async def create_key(
    conn: Conn,
    workspace: str,
    connector: str = DEFAULT_CONNECTOR,
    *,
    block_free_email: bool | None = None,
    trusted_domains: list[str] | None = None,
    shared_secret: str | None = None,
) -> CreatedKey:
    """Create the workspace and connector if new, and a key for them.

    Connector options given here replace the connector's; options left out keep it as it is.
    """
    async with conn.transaction():
        workspace_id = await conn.fetchval(
            """INSERT INTO workspaces (name) VALUES ($1)
               ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id""",
            workspace,
        )
        connector_id = await conn.fetchval(
            """INSERT INTO connectors
                   (workspace_id, name, block_free_email_users, trusted_domains, shared_secret)
               VALUES ($1, $2, coalesce($3, false), coalesce($4, '{}'::text[]), $5)
               ON CONFLICT (workspace_id, name) DO UPDATE SET
                   block_free_email_users =
                       coalesce($3, connectors.block_free_email_users),
                   trusted_domains = coalesce($4, connectors.trusted_domains),
                   shared_secret = coalesce($5, connectors.shared_secret)
               RETURNING id""",
            workspace_id,
            connector,
            block_free_email,
            [d.lower() for d in trusted_domains] if trusted_domains else None,
            shared_secret,
        )
        key = new_key()
        await conn.execute(
            """INSERT INTO api_keys (workspace_id, connector_id, key_prefix, key_hash)
               VALUES ($1, $2, $3, $4)""",
            workspace_id,
            connector_id,
            key_prefix(key),
            hash_key(key),
        )
    return CreatedKey(
        workspace, connector, key, key_prefix(key), int(workspace_id), int(connector_id)
    )


async def add_key(conn: Conn, workspace: str, connector: str) -> CreatedKey:
    """A new key for an existing connector (the management API; `create_key` makes both)."""
    ws = await workspace_id(conn, workspace)
    connector_id = await conn.fetchval(
        "SELECT id FROM connectors WHERE workspace_id = $1 AND name = $2", ws, connector
    )
    if connector_id is None:
        raise NotFound(f"no connector named {connector!r} in {workspace!r}")
    return await create_key(conn, workspace, connector)


async def list_keys(conn: Conn, workspace: str, page: PageRequest = EVERYTHING) -> Page[KeyInfo]:
    """Keys by prefix, newest first; a whole key is never stored, so never shown."""
    ws = await workspace_id(conn, workspace)
    rows, cursor = await fetch_page(
        conn,
        """SELECT k.key_prefix, c.name AS connector, k.created_at, k.revoked_at,
                  k.created_at AS page_time, k.id AS page_key
             FROM api_keys k
             JOIN connectors c ON c.workspace_id = k.workspace_id AND c.id = k.connector_id
            WHERE k.workspace_id = $1""",
        [ws],
        Order("k.created_at", "k.id", "bigint"),
        page,
    )
    return Page([KeyInfo(r[0], r[1], r[2], r[3]) for r in rows], cursor)


async def revoke_key(conn: Conn, key_or_prefix: str, workspace: str | None = None) -> str:
    """Revoke one key, named whole or by its prefix (within `workspace` when given);
    returns the prefix."""
    if len(key_or_prefix) > KEY_PREFIX_LENGTH:
        where, arg = "key_hash = $1", hash_key(key_or_prefix)
    else:
        where, arg = "key_prefix = $1", key_or_prefix
    ws = None if workspace is None else await workspace_id(conn, workspace)
    async with conn.transaction():
        rows = await conn.fetch(
            f"""SELECT workspace_id, id, key_prefix FROM api_keys
                 WHERE {where} AND ($2::bigint IS NULL OR workspace_id = $2) FOR UPDATE""",
            arg,
            ws,
        )
        if not rows:
            raise NotFound("no such key")
        if len(rows) > 1:
            raise InvalidInput("that prefix names several keys: give the whole key")
        row = rows[0]
        await conn.execute(
            """UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
                WHERE workspace_id = $1 AND id = $2""",
            row["workspace_id"],
            row["id"],
        )
    return str(row["key_prefix"])
