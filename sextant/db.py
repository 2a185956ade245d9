"""Postgres connections and pools, set up the same way in every process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeAlias

import asyncpg
import msgspec
import structlog
from asyncpg.pool import PoolConnectionProxy

from sextant.errors import ConfigError
from sextant.settings import Settings

log = structlog.get_logger()
_encoder = msgspec.json.Encoder()


_JSONB_VERSION = b"\x01"  # jsonb's binary format: a version byte, then the JSON text


async def init_connection(conn: asyncpg.Connection) -> None:
    # jsonb as Python values both ways, through msgspec rather than the json module, in
    # the binary format so the text is never turned into a str and back.
    await conn.set_type_codec(
        "jsonb",
        encoder=_encode_jsonb,
        decoder=_decode_jsonb,
        schema="pg_catalog",
        format="binary",
    )


def _encode_jsonb(value: object) -> bytes:
    return _JSONB_VERSION + _encoder.encode(value)


def _decode_jsonb(data: bytes) -> object:
    return msgspec.json.decode(data[1:])


async def _reset(conn: asyncpg.Connection) -> None:
    """What a connection needs before it goes back to the pool.

    Our sessions change no settings, hold no advisory locks and listen to nothing, so
    asyncpg's default reset (four statements, one round trip per release) has nothing
    to undo; only a transaction left open by a cancelled task must not leak.
    """
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


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
        reset=_reset,
    )
    assert pool is not None
    return pool


@contextlib.asynccontextmanager
async def connection(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """One connection, for a command that runs a few statements and ends; an unreachable
    Postgres is a configuration error naming the variable."""
    try:
        conn = await asyncpg.connect(settings.require_database_url(), timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError) as e:
        raise ConfigError(f"DATABASE_URL: cannot connect: {e}") from e
    try:
        await init_connection(conn)
        yield conn
    finally:
        await conn.close()


# What queries run on: a plain connection or one borrowed from a pool.
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"


async def reload_forever(load: Callable[[], Awaitable[None]], seconds: float, failed: str) -> None:
    """Call `load` every `seconds`; a failed load keeps what was loaded, is logged as the
    event `failed`, and is tried again at the next period."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await load()
        except (OSError, asyncpg.PostgresError) as e:
            log.warning(failed, error=str(e))
