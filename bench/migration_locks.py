"""`python -m bench.migration_locks`: this release's migrations applied to a database that
holds a million events and half a million journaled calls while a writer keeps inserting
both, as the previous release's workers do; how long each migration took and how long
the writer was held.

BENCH_MIGRATION_EVENTS changes the number of events (default 1,000,000); the journal holds
half as many calls, and the old ledger (`processed_messages`) a fifth as many messageIds
from before the journal began, which migration 11 carries over.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
import uuid

import asyncpg

from ops.devstack import embedded_services
from ops.migrate import load_migrations, migrate
from sextant.settings import Settings

EVENTS = int(os.environ.get("BENCH_MIGRATION_EVENTS", "1000000"))
# The last migration of the previous release: what the database holds before this one.
PREVIOUS_RELEASE = 10
WRITES_PER_TRANSACTION = 200

_FILL = "INSERT INTO workspaces (name) VALUES ($1) RETURNING id"
_FILL_EVENTS = """
INSERT INTO events (workspace_id, message_id, user_pk, name, properties, occurred_at, received_at)
SELECT $1, 'fill-' || n, n % 50000, 'Fill ' || (n % 20), '{"plan": "pro", "seats": 3}',
       now() - n * interval '1 second', now()
  FROM generate_series(1, $2) AS n
"""
_FILL_VIEWS = """
INSERT INTO page_views (workspace_id, message_id, user_pk, kind, name, url, properties,
                        occurred_at, received_at)
SELECT $1, 'fill-' || n, n % 50000, 'page', 'Home', 'https://initech.com/', '{}',
       now() - n * interval '1 second', now()
  FROM generate_series(1, $2) AS n
"""
_BODY = '{"type":"track","event":"Fill","properties":{"plan":"pro","seats":3},"messageId":"m"}'
# Calls journaled, messageIds `$2-1` to `$2-$3`: by the fill, and by the writer.
_JOURNAL = f"""
INSERT INTO call_journal (workspace_id, message_id, identities, version, body)
SELECT $1, $2 || '-' || n, ARRAY['user_id:u-' || (n % 50000)], 'v-' || n, '{_BODY}'::bytea
  FROM generate_series(1, $3) AS n
"""
# messageIds the old ledger kept from before the journal began (migration 10).
_FILL_LEDGER = """
INSERT INTO processed_messages (workspace_id, message_id, processed_at)
SELECT $1, 'old-' || n, now() - interval '1 day' - n * interval '1 second'
  FROM generate_series(1, $2) AS n
"""
# The previous release's writes, as its workers make them: the events, the old ledger and
# the journal, in one transaction.
_WRITE = (
    """
INSERT INTO events (workspace_id, message_id, user_pk, name, properties, occurred_at, received_at)
SELECT $1, $2 || '-' || n, n % 50000, 'Live', '{}', now(), now()
  FROM generate_series(1, $3) AS n
""",
    """
INSERT INTO processed_messages (workspace_id, message_id)
SELECT $1, $2 || '-' || n FROM generate_series(1, $3) AS n
""",
    _JOURNAL,
)


async def _writer(pool: asyncpg.Pool, ws: int, stop: asyncio.Event) -> list[tuple[float, float]]:
    """(started, seconds) of each writing transaction until told to stop."""
    timings = []
    while not stop.is_set():
        started = time.perf_counter()
        async with pool.acquire() as conn, conn.transaction():
            batch = uuid.uuid4().hex
            for statement in _WRITE:
                await conn.execute(statement, ws, batch, WRITES_PER_TRANSACTION)
        timings.append((started, time.perf_counter() - started))
        await asyncio.sleep(0.005)
    return timings


async def run(database_url: str) -> dict[str, float]:
    """In a database of its own, created and dropped on the server DATABASE_URL names."""
    name = f"sextant_migration_bench_{uuid.uuid4().hex[:8]}"
    server = await asyncpg.connect(database_url)
    await server.execute(f'CREATE DATABASE "{name}"')
    try:
        return await _measure(database_url, name)
    finally:
        await server.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await server.close()


async def _measure(database_url: str, database: str) -> dict[str, float]:
    conn = await asyncpg.connect(database_url, database=database)
    pool = await asyncpg.create_pool(database_url, database=database, min_size=2, max_size=2)
    try:
        await migrate(conn, until=PREVIOUS_RELEASE)
        ws = await conn.fetchval(_FILL, f"migration-{uuid.uuid4().hex[:8]}")
        started = time.perf_counter()
        await conn.execute(_FILL_EVENTS, ws, EVENTS)
        await conn.execute(_FILL_VIEWS, ws, EVENTS // 5)
        await conn.execute(_JOURNAL, ws, "fill", EVENTS // 2)
        await conn.execute(_FILL_LEDGER, ws, EVENTS // 5)
        for table in ("events", "page_views", "call_journal", "processed_messages"):
            await conn.execute(f"VACUUM ANALYZE {table}")
        filled = time.perf_counter() - started
        stop = asyncio.Event()
        writing = asyncio.create_task(_writer(pool, ws, stop))
        await asyncio.sleep(3)  # the writer's pace before
        durations: dict[str, float] = {}
        windows = []
        for migration in load_migrations():
            if migration.version <= PREVIOUS_RELEASE:
                continue
            began = time.perf_counter()
            await migrate(conn, until=migration.version)
            ended = time.perf_counter()
            durations[f"migration_{migration.version:04d}_s"] = round(ended - began, 3)
            windows.append((began, ended))
        await asyncio.sleep(3)  # and after
        stop.set()
        timings = await writing
    finally:
        await pool.close()
        await conn.close()
    during = [s for t, s in timings if any(a - s <= t <= b for a, b in windows)]
    outside = [s for t, s in timings if not any(a - s <= t <= b for a, b in windows)]
    return {
        "events": EVENTS,
        "page_views": EVENTS // 5,
        "journaled_calls": EVENTS // 2,
        "ledger_messageids_before_the_journal": EVENTS // 5,
        "fill_s": round(filled, 1),
        **durations,
        "writer_transactions_during": len(during),
        "writer_max_ms_during": round(max(during, default=0) * 1000, 1),
        "writer_p50_ms_outside": round(statistics.median(outside) * 1000, 1),
        "writer_max_ms_outside": round(max(outside) * 1000, 1),
    }


def main() -> None:
    with embedded_services(Settings.from_env()) as services:
        figures = asyncio.run(run(services.require_database_url()))
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
