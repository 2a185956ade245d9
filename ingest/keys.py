"""API keys, held in memory by every receiver and reloaded often enough that a revocation
reaches every pod within seconds."""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass

import asyncpg
import structlog

from sextant.apikeys import hash_key
from sextant.errors import Forbidden, MissingKey, Unavailable

log = structlog.get_logger()

# The same few keys arrive on every request: hash each once. Bounded, so a flood of
# made-up keys cannot grow it.
_hash_key = functools.lru_cache(maxsize=1024)(hash_key)

# A request with an unknown key reloads the keys (a key created a moment ago works at
# once), but no more often than this, so a flood of bad keys cannot flood Postgres.
_MISS_RELOAD_INTERVAL = 0.25


@dataclass(frozen=True, slots=True)
class Credential:
    workspace_id: int
    connector_id: int
    revoked: bool
    block_free_email: bool
    trusted_domains: tuple[str, ...]
    shared_secret: str | None


class KeyStore:
    """Every API key's credential by its hash, in memory, reloaded every few seconds."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._by_hash: dict[str, Credential] = {}
        self._loaded_at = 0.0
        self._reload: asyncio.Task[None] | None = None
        self.loaded = False

    async def authenticate(self, key: str | None) -> Credential:
        if not key:
            raise MissingKey("no API key: send it as Basic auth, Bearer, X-Write-Key or writeKey")
        key_hash = _hash_key(key)
        credential = self._by_hash.get(key_hash)
        if credential is None:
            try:
                await self._reload_soon()
            except (OSError, asyncpg.PostgresError) as e:
                # Not a 401: Segment drops those, and the key may well be valid.
                raise Unavailable("API keys cannot be read right now") from e
            credential = self._by_hash.get(key_hash)
        if credential is None:
            raise MissingKey("unknown API key")
        if credential.revoked:
            raise Forbidden("this API key has been revoked")
        return credential

    async def load(self) -> None:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT k.key_hash, k.revoked_at IS NOT NULL AS revoked, c.workspace_id,
                          c.id AS connector_id, c.block_free_email_users,
                          c.trusted_domains, c.shared_secret
                     FROM api_keys k
                     JOIN connectors c
                       ON c.workspace_id = k.workspace_id AND c.id = k.connector_id"""
            )
        self._by_hash = {
            r["key_hash"]: Credential(
                workspace_id=r["workspace_id"],
                connector_id=r["connector_id"],
                revoked=r["revoked"],
                block_free_email=r["block_free_email_users"],
                trusted_domains=tuple(r["trusted_domains"]),
                shared_secret=r["shared_secret"],
            )
            for r in rows
        }
        self._loaded_at = time.monotonic()
        self.loaded = True

    async def _reload_soon(self) -> None:
        # Concurrent callers share one reload rather than each starting their own.
        if self._reload is None or self._reload.done():
            self._reload = asyncio.create_task(self._reload_after_pause())
        await asyncio.shield(self._reload)

    async def _reload_after_pause(self) -> None:
        pause = self._loaded_at + _MISS_RELOAD_INTERVAL - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)
        await self.load()
