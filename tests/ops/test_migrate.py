"""Migrations on a database in use: writers are held up for at most the lock timeout, not
for as long as a migration waits, and index builds do not hold them at all."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import pytest

from ops.keys import create_key
from ops.migrate import load_migrations, migrate
from sextant.db import init_connection
from sextant.settings import Settings
from tests.support.calls import call
from worker.unit_of_work import apply_calls

_WRITE = """
INSERT INTO events (workspace_id, message_id, user_pk, name, occurred_at, received_at)
VALUES (1, $1, 1, 'Live', now(), now())
"""


@pytest.fixture
async def fresh(services: Settings) -> AsyncIterator[str]:
    """A database of this test's own, empty; yields its name."""
    name = f"migrate_{uuid.uuid4().hex[:10]}"
    server = await asyncpg.connect(services.require_database_url())
    await server.execute(f'CREATE DATABASE "{name}"')
    yield name
    await server.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await server.close()


async def test_a_busy_table_holds_writers_only_for_the_lock_timeout(
    services: Settings, fresh: str
) -> None:
    """A long transaction reads `events` while the next migration wants to alter it. The
    migration gives up its place in the lock queue and tries again, so a writer that came
    after it is done long before the long transaction ends; then the migration applies."""
    url = services.require_database_url()
    migrating = await asyncpg.connect(url, database=fresh)
    reader = await asyncpg.connect(url, database=fresh)
    writer = await asyncpg.connect(url, database=fresh)
    try:
        await migrate(migrating, until=4)
        reading = reader.transaction()
        await reading.start()
        await reader.fetchval("SELECT count(*) FROM events")  # holds ACCESS SHARE until commit
        altering = asyncio.create_task(migrate(migrating, until=5))
        await asyncio.sleep(0.3)  # the ALTER TABLE is queued behind the reader by now
        finished: list[str] = []
        writing = asyncio.create_task(writer.execute(_WRITE, "w-1"))
        writing.add_done_callback(lambda _: finished.append("writer"))
        await asyncio.sleep(4)  # several lock timeouts
        finished.append("reader")
        await reading.commit()
        await writing
        assert await altering == [5]
        assert finished == ["writer", "reader"]
    finally:
        for conn in (migrating, reader, writer):
            await conn.close()


async def test_migrations_without_a_transaction_run_statement_by_statement(
    services: Settings, fresh: str
) -> None:
    """CREATE INDEX CONCURRENTLY cannot run in a transaction; such a migration applies, and
    its indexes are valid."""
    assert any(not m.transactional for m in load_migrations())
    conn = await asyncpg.connect(services.require_database_url(), database=fresh)
    try:
        applied = await migrate(conn)
        invalid = await conn.fetchval(
            "SELECT count(*) FROM pg_index WHERE NOT indisvalid OR NOT indisready"
        )
        indexes = await conn.fetch(
            "SELECT indexname FROM pg_indexes WHERE indexname IN ('events_account', "
            "'page_views_account', 'call_journal_applied') ORDER BY indexname"
        )
    finally:
        await conn.close()
    assert applied == [m.version for m in load_migrations()]
    assert invalid == 0
    assert [r["indexname"] for r in indexes] == [
        "call_journal_applied",
        "events_account",
        "page_views_account",
    ]


async def test_messageids_applied_before_the_journal_stay_applied(
    services: Settings, fresh: str
) -> None:
    """The call journal takes over from processed_messages as the record of what was
    applied: a messageId the ledger held from before the journal began is carried over,
    and a call delivered again with it is a duplicate. Ledger rows from after are in the
    journal already, and are not carried over again."""
    conn = await asyncpg.connect(services.require_database_url(), database=fresh)
    await init_connection(conn)
    try:
        await migrate(conn, until=10)
        ws = await create_key(conn, "before-the-journal")
        await conn.execute(
            """INSERT INTO processed_messages (workspace_id, message_id, processed_at)
               VALUES ($1, 'before', now() - interval '3 days'),
                      ($1, 'after', now() + interval '1 minute')""",
            ws.workspace_id,
        )
        await migrate(conn)
        carried = await conn.fetch("SELECT message_id, identities, version, body FROM call_journal")
        outcome = await apply_calls(
            conn, [call(ws, type="track", userId="u-1", event="Again", messageId="before")]
        )
    finally:
        await conn.close()
    assert [tuple(r) for r in carried] == [("before", [], "", b"")]
    assert outcome.calls == Counter({("track", "duplicate"): 1})
