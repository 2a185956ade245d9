"""SQL for accounts (Segment groups) and their members."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from sextant.db import Conn
from worker.rules.records import Account, AccountMember
from worker.sql.arrays import columnar, pk

COLUMNS: Final = (
    "name",
    "description",
    "email",
    "phone",
    "employees",
    "industry",
    "plan",
    "website",
    "country",
    "region",
    "city",
)
_TYPES: Final = {"employees": "bigint"}
_SELECT_COLUMNS = ", ".join(COLUMNS)
_ARRAYS = ", ".join(f"${i + 4}::{_TYPES.get(c, 'text')}[]" for i, c in enumerate(COLUMNS))

# Accounts are shared by users on every partition, so two workers (or lanes) often meet
# the same new group. Creating the missing rows first, in one order, makes the second
# wait for the first rather than fail on the unique key and redo its whole batch.
_ENSURE = """
INSERT INTO accounts (workspace_id, group_id)
SELECT w, gid FROM unnest($1::bigint[], $2::text[]) AS k (w, gid)
 ORDER BY w, gid
ON CONFLICT (workspace_id, group_id) DO NOTHING
RETURNING workspace_id, group_id
"""

_DELETE = """
DELETE FROM accounts a USING unnest($1::bigint[], $2::bigint[]) AS d (w, id)
 WHERE a.workspace_id = d.w AND a.id = d.id
"""

_LOCK = f"""
SELECT a.id, a.workspace_id, a.group_id, {", ".join(f"a.{c}" for c in COLUMNS)},
       a.traits, a.field_versions
  FROM accounts a
  JOIN unnest($1::bigint[], $2::text[]) AS k (w, gid)
    ON a.workspace_id = k.w AND a.group_id = k.gid
 ORDER BY a.workspace_id, a.id
   FOR UPDATE OF a
"""

_UPSERT = f"""
INSERT INTO accounts (id, workspace_id, group_id, {_SELECT_COLUMNS}, traits, field_versions)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[],
                     {_ARRAYS},
                     ${4 + len(COLUMNS)}::jsonb[], ${5 + len(COLUMNS)}::jsonb[])
ON CONFLICT (workspace_id, id) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS)},
    traits = EXCLUDED.traits,
    field_versions = EXCLUDED.field_versions,
    updated_at = now()
"""

_ADD_MEMBERS = """
INSERT INTO account_users AS au (workspace_id, account_pk, user_pk, version)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[])
ON CONFLICT (workspace_id, account_pk, user_pk) DO UPDATE
   SET version = greatest(au.version, EXCLUDED.version)
"""


async def lock(conn: Conn, group_ids: Sequence[tuple[int, str]]) -> list[Account]:
    """Lock the accounts of these groups, creating (empty) the ones that do not exist yet."""
    if not group_ids:
        return []
    columns = columnar(group_ids, 2)
    inserted = {(r["workspace_id"], r["group_id"]) for r in await conn.fetch(_ENSURE, *columns)}
    rows = await conn.fetch(_LOCK, *columns)
    return [
        Account(
            workspace_id=r["workspace_id"],
            pk=r["id"],
            group_id=r["group_id"],
            columns={c: r[c] for c in COLUMNS if r[c] is not None},
            traits=r["traits"],
            versions=r["field_versions"],
            inserted=(r["workspace_id"], r["group_id"]) in inserted,
        )
        for r in rows
    ]


async def delete(conn: Conn, accounts: Sequence[Account]) -> None:
    """Remove accounts this batch created but no call used (a blocked identity's group)."""
    if accounts:
        await conn.execute(_DELETE, [a.workspace_id for a in accounts], [a.pk for a in accounts])


async def save(conn: Conn, accounts: Sequence[Account]) -> None:
    if not accounts:
        return
    await conn.execute(
        _UPSERT,
        [a.pk for a in accounts],
        [a.workspace_id for a in accounts],
        [a.group_id for a in accounts],
        *([a.columns.get(c) for a in accounts] for c in COLUMNS),
        [a.traits for a in accounts],
        [a.versions for a in accounts],
    )


async def add_members(conn: Conn, members: Sequence[AccountMember]) -> None:
    """Each user a member of its account, at the newest version of a group call saying so."""
    newest: dict[tuple[int, int, int], str] = {}
    for m in members:
        key = (m.account.workspace_id, pk(m.account), pk(m.user.final()))
        newest[key] = max(m.version, newest.get(key, ""))
    if newest:
        keys = sorted(newest)  # one lock order for every batch
        await conn.execute(_ADD_MEMBERS, *columnar(keys, 3), [newest[k] for k in keys])
