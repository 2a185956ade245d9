"""Postgres connection pools, set up the same way in every process."""

from __future__ import annotations

from typing import TypeAlias

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from sextant.settings import Settings

_encoder = msgspec.json.Encoder()


async def init_connection(conn: asyncpg.Connection) -> None:
    # jsonb as Python values both ways, through msgspec rather than the json module.
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda value: _encoder.encode(value).decode(),
        decoder=msgspec.json.decode,
        schema="pg_catalog",
    )


async def create_pool(
    settings: Settings, max_size: int | None = None, min_size: int = 1
) -> asyncpg.Pool:
    """A pool; with `min_size=0` it opens no connection until one is needed, so a process
    can start (and report not-ready) while Postgres is down."""
    pool = await asyncpg.create_pool(
        settings.require_database_url(),
        min_size=min_size,
        # Statements here take whole batches as arrays: a plan made for the arrays at hand
        # beats a generic one cached while the tables were small.
        server_settings={"plan_cache_mode": "force_custom_plan"},
        max_size=max_size or settings.db_pool_size,
        init=init_connection,
    )
    assert pool is not None
    return pool


# What queries run on: a plain connection or one borrowed from a pool.
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
