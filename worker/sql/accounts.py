"""SQL for accounts (Segment groups), their members and audiences, and their deletes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from sextant.db import Conn
from worker.rules.records import Account, AccountMember, Membership, split_version
from worker.sql.arrays import audience_rows, columnar, pk

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
       a.traits, a.field_versions, a.touched_version
  FROM accounts a
  JOIN unnest($1::bigint[], $2::text[]) AS k (w, gid)
    ON a.workspace_id = k.w AND a.group_id = k.gid
 ORDER BY a.workspace_id, a.id
   FOR UPDATE OF a
"""

_UPSERT = f"""
INSERT INTO accounts (id, workspace_id, group_id, {_SELECT_COLUMNS}, traits, field_versions,
                      touched_version)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[],
                     {_ARRAYS},
                     ${4 + len(COLUMNS)}::jsonb[], ${5 + len(COLUMNS)}::jsonb[],
                     ${6 + len(COLUMNS)}::text[])
ON CONFLICT (workspace_id, id) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS)},
    traits = EXCLUDED.traits,
    field_versions = EXCLUDED.field_versions,
    touched_version = EXCLUDED.touched_version,
    updated_at = now()
"""

# A membership stands when the newest call making it is newer than the newest ending it.
_ADD_MEMBERS = """
INSERT INTO account_users AS au (workspace_id, account_pk, user_pk, version)
SELECT k.w, k.a, k.u, k.version
  FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[]) AS k (w, a, u, version)
  LEFT JOIN account_user_endings e
    ON e.workspace_id = k.w AND e.account_pk = k.a AND e.user_pk = k.u
 WHERE e.version IS NULL OR e.version < k.version
ON CONFLICT (workspace_id, account_pk, user_pk) DO UPDATE
   SET version = greatest(au.version, EXCLUDED.version)
"""

_END_MEMBERS = [
    """INSERT INTO account_user_endings AS e (workspace_id, account_pk, user_pk, version)
       SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[])
       ON CONFLICT (workspace_id, account_pk, user_pk) DO UPDATE
          SET version = greatest(e.version, EXCLUDED.version)""",
    """DELETE FROM account_users au
         USING unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[]) AS k (w, a, u, version)
        WHERE au.workspace_id = k.w AND au.account_pk = k.a AND au.user_pk = k.u
          AND au.version < k.version""",
]

_SAVE_AUDIENCES = """
INSERT INTO account_audience_memberships AS am
       (workspace_id, account_pk, audience_key, member, computation_class, computation_id,
        space_id, version, updated_at)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::boolean[], $5::text[],
                     $6::text[], $7::text[], $8::text[], $9::timestamptz[])
ON CONFLICT (workspace_id, account_pk, audience_key) DO UPDATE SET
       member = EXCLUDED.member, computation_class = EXCLUDED.computation_class,
       computation_id = EXCLUDED.computation_id, space_id = EXCLUDED.space_id,
       version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
 WHERE EXCLUDED.version > am.version
"""

_TOMBSTONES = """
SELECT t.workspace_id, t.group_id, t.version
  FROM account_tombstones t
  JOIN unnest($1::bigint[], $2::text[]) AS k (w, gid)
    ON t.workspace_id = k.w AND t.group_id = k.gid
"""

_SAVE_TOMBSTONES = """
INSERT INTO account_tombstones AS t (workspace_id, group_id, version)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])
ON CONFLICT (workspace_id, group_id) DO UPDATE SET version = greatest(t.version, EXCLUDED.version)
"""

# What an Account Deleted at (time, messageId) leaves of an account newer calls named: its
# events and page views stay, as their users' history, without it.
_FORGET_BEFORE = [
    *(
        f"""DELETE FROM {table} x
             USING unnest($1::bigint[], $2::bigint[], $3::text[], $4::timestamptz[], $5::text[])
                   AS p (w, pk, version, t, mid)
            WHERE x.workspace_id = p.w AND x.account_pk = p.pk AND x.version < p.version"""
        for table in ("account_users", "account_user_endings", "account_audience_memberships")
    ),
    *(
        f"""UPDATE {table} x SET account_pk = NULL
              FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::timestamptz[], $5::text[])
                   AS p (w, pk, version, t, mid)
             WHERE x.workspace_id = p.w AND x.account_pk = p.pk
               AND (x.occurred_at, x.message_id) < (p.t, p.mid)"""
        for table in ("events", "page_views")
    ),
]

# An account and what hangs off it (no cascading keys: see 0002).
_REMOVE = [
    *(
        f"""DELETE FROM {table} x USING unnest($1::bigint[], $2::bigint[]) AS d (w, pk)
             WHERE x.workspace_id = d.w AND x.account_pk = d.pk"""
        for table in ("account_users", "account_user_endings", "account_audience_memberships")
    ),
    *(
        f"""UPDATE {table} x SET account_pk = NULL
              FROM unnest($1::bigint[], $2::bigint[]) AS d (w, pk)
             WHERE x.workspace_id = d.w AND x.account_pk = d.pk"""
        for table in ("events", "page_views")
    ),
    """DELETE FROM accounts a USING unnest($1::bigint[], $2::bigint[]) AS d (w, pk)
        WHERE a.workspace_id = d.w AND a.id = d.pk""",
]


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
            touched=r["touched_version"],
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
        [a.touched for a in accounts],
    )


async def add_members(conn: Conn, members: Sequence[AccountMember]) -> None:
    """Each user a member of its account, at the newest version of a call saying so."""
    if rows := _newest(members):
        await conn.execute(_ADD_MEMBERS, *columnar(rows, 4))


async def end_members(conn: Conn, endings: Sequence[AccountMember]) -> None:
    """End memberships (Account Removed User), and remember when."""
    if rows := _newest(endings):
        columns = columnar(rows, 4)
        for statement in _END_MEMBERS:
            await conn.execute(statement, *columns)


def _newest(members: Sequence[AccountMember]) -> list[tuple[int, int, int, str]]:
    """(workspace, account, user, newest version) per pair, in one lock order for every batch."""
    newest: dict[tuple[int, int, int], str] = {}
    for m in members:
        key = (m.account.workspace_id, pk(m.account), pk(m.user.final()))
        newest[key] = max(m.version, newest.get(key, ""))
    return [(*key, newest[key]) for key in sorted(newest)]


async def save_audiences(conn: Conn, memberships: Sequence[Membership]) -> None:
    """Engage account audiences: the newest call decides whether the account is a member."""
    held = [(m, m.holder) for m in memberships if isinstance(m.holder, Account)]
    if held:
        await conn.execute(_SAVE_AUDIENCES, *audience_rows(held))


async def tombstones(
    conn: Conn, group_ids: Sequence[tuple[int, str]]
) -> dict[tuple[int, str], str]:
    """The versions of the Account Deleted calls these groups have had."""
    if not group_ids:
        return {}
    rows = await conn.fetch(_TOMBSTONES, *columnar(group_ids, 2))
    return {(r["workspace_id"], r["group_id"]): r["version"] for r in rows}


async def save_tombstones(conn: Conn, tombstones: dict[tuple[int, str], str]) -> None:
    if tombstones:
        keys = sorted(tombstones)
        await conn.execute(_SAVE_TOMBSTONES, *columnar(keys, 2), [tombstones[k] for k in keys])


async def forget_before(conn: Conn, cuts: Sequence[tuple[Account, str]]) -> None:
    """For each (account, Account Deleted version), let go of what is older than it."""
    if not cuts:
        return
    rows = [(a.workspace_id, pk(a), version, *split_version(version)) for a, version in cuts]
    columns = columnar(rows, 5)
    for statement in _FORGET_BEFORE:
        await conn.execute(statement, *columns)


async def remove(conn: Conn, accounts: Sequence[Account]) -> None:
    """Delete accounts with their memberships and audiences; their events stay, unlinked."""
    if accounts:
        columns = [[a.workspace_id for a in accounts], [pk(a) for a in accounts]]
        for statement in _REMOVE:
            await conn.execute(statement, *columns)
