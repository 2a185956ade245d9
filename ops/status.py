"""`sextant status`: can this process reach Postgres and Kafka, one line each."""

from __future__ import annotations

import asyncio

import asyncpg
from aiokafka.errors import KafkaError

from ops.topics import partition_counts
from sextant.settings import Settings


async def postgres_status(settings: Settings) -> str:
    conn = await asyncpg.connect(settings.require_database_url(), timeout=5)
    try:
        if not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
            return "ok, but not migrated: run `sextant migrate`"
        version = await conn.fetchval("SELECT max(version) FROM schema_migrations")
        return f"ok, schema version {version}"
    finally:
        await conn.close()


async def kafka_status(settings: Settings) -> str:
    counts = await asyncio.wait_for(partition_counts(settings), 15)
    return "ok, " + ", ".join(f"{t} {n} partition(s)" for t, n in counts.items())


async def service_status(settings: Settings) -> list[tuple[str, bool, str]]:
    """(service, reachable, what it says) for Postgres and Kafka."""
    found = []
    for name, check in (("postgres", postgres_status), ("kafka", kafka_status)):
        try:
            found.append((name, True, await check(settings)))
        except (OSError, TimeoutError, asyncpg.PostgresError, KafkaError) as e:
            found.append((name, False, f"UNREACHABLE: {type(e).__name__}: {e}"))
    return found
