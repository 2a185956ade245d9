"""The schema stays ready to distribute by workspace (Citus, contract sections 6 and 9):
every table carries `workspace_id`, and every primary and unique key starts with it, so
each key's rows live on one shard."""

from __future__ import annotations

import asyncpg
import pytest

pytestmark = pytest.mark.slow

# Tables that are not a workspace's data, each with why it is not distributed.
NOT_DISTRIBUTED = {
    "workspaces": "the tenants themselves: a reference table",
    "schema_migrations": "the migration ledger of the database",
    "receivers": "live receivers sharing intake rates: operational, on the coordinator",
}


async def test_every_table_carries_workspace_id(db: asyncpg.Connection) -> None:
    rows = await db.fetch(
        """SELECT c.relname AS table_name,
                  bool_or(a.attname = 'workspace_id') AS has_workspace
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
            GROUP BY c.relname"""
    )
    tables = {r["table_name"]: r["has_workspace"] for r in rows}
    assert "users" in tables
    assert "events" in tables
    assert [t for t, has in tables.items() if not has and t not in NOT_DISTRIBUTED] == []
    assert set(NOT_DISTRIBUTED) <= set(tables)


async def test_every_primary_and_unique_key_starts_with_workspace_id(
    db: asyncpg.Connection,
) -> None:
    rows = await db.fetch(
        """SELECT c.relname AS table_name, i.relname AS index_name,
                  (SELECT attname FROM pg_attribute
                    WHERE attrelid = x.indrelid AND attnum = x.indkey[0]) AS first_column
             FROM pg_index x
             JOIN pg_class c ON c.oid = x.indrelid
             JOIN pg_class i ON i.oid = x.indexrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = current_schema() AND (x.indisprimary OR x.indisunique)"""
    )
    keys = [(r["table_name"], r["index_name"], r["first_column"]) for r in rows]
    assert len(keys) > 10
    wrong = [k for k in keys if k[2] != "workspace_id" and k[0] not in NOT_DISTRIBUTED]
    assert wrong == []
