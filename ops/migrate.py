"""Numbered SQL migrations, applied once each under a Postgres advisory lock.

Migrations run while workers write. A statement that needs a table's exclusive lock
(ALTER TABLE) waits behind the transactions using the table, and every writer then waits
behind it; so each migration gives up after LOCK_TIMEOUT and tries again, holding up
writers for at most that long at a time rather than for as long as the longest transaction.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg
import structlog

from sextant.db import Conn

log = structlog.get_logger()

# Any constant works; it only has to be the same for every pod that migrates.
_LOCK_KEY = 0x5E47A47
LOCK_TIMEOUT = "1s"
_ATTEMPTS = 60


# A first line that lets a migration run outside a transaction, one statement at a time:
# CREATE INDEX CONCURRENTLY cannot run inside one. Such a migration must be safe to
# run again from the start, since it is recorded only once every statement has run.
_WITHOUT_A_TRANSACTION = "-- migrate: without a transaction"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def transactional(self) -> bool:
        return not self.sql.startswith(_WITHOUT_A_TRANSACTION)

    def statements(self) -> list[str]:
        """The statements one by one (each ends a line with `;`; none holds one inside)."""
        return [s.strip() for s in re.split(r";\s*$", self.sql, flags=re.M) if _code(s)]


def _code(sql: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in sql.splitlines())


def load_migrations() -> list[Migration]:
    """The migrations shipped in `ops/migrations`, in version order."""
    found = []
    for entry in resources.files("ops.migrations").iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    return sorted(found, key=lambda m: m.version)


async def migrate(conn: Conn, until: int | None = None) -> list[int]:
    """Apply what is missing (up to version `until`, if given); several pods may call this
    at once. Returns versions applied."""
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version     integer PRIMARY KEY,
                   name        text NOT NULL,
                   applied_at  timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        applied = []
        for migration in load_migrations():
            if migration.version in done or (until is not None and migration.version > until):
                continue
            await _apply(conn, migration)
            log.info("migration_applied", version=migration.version, name=migration.name)
            applied.append(migration.version)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def _record(conn: Conn, migration: Migration) -> None:
    await conn.execute(
        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
        migration.version,
        migration.name,
    )


async def _apply(conn: Conn, migration: Migration) -> None:
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            if migration.transactional:
                async with conn.transaction():
                    await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                    await conn.execute(migration.sql)
                    await _record(conn, migration)
            else:  # CONCURRENTLY: no lock that holds up writers
                for statement in migration.statements():
                    await conn.execute(statement)
                await _record(conn, migration)
            return
        except asyncpg.LockNotAvailableError:
            if attempt == _ATTEMPTS:
                raise
            log.warning("migration_lock_busy", version=migration.version, attempt=attempt)
            await asyncio.sleep(min(0.1 * attempt, 2.0))
