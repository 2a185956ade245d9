"""SQL for users, their anonymous ids and emails, and audience memberships: a statement
per table per batch."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import asyncpg

from sextant.db import Conn
from worker.rules.identity import EMAIL_MARK, is_email_id
from worker.rules.records import Membership, User
from worker.sql.arrays import audience_rows, columnar, pk

COLUMNS: Final = (
    "email",
    "first_name",
    "last_name",
    "phone",
    "gender",
    "country",
    "region",
    "city",
    "user_agent",
    "os",
    "device_name",
    "device_type",
    "language",
    "resolution",
    "ip_address",
    "browser_family",
    "browser_version",
    "timezone",
    "current_url",
)
_SELECT_COLUMNS = ", ".join(COLUMNS)

# Anonymous ids and Engage's emails are kept alike, each in its own table (see
# `rules.identity`): (table, its id column).
_SECONDARY_TABLES: Final = (("anonymous_ids", "anonymous_id"), ("email_identities", "email"))

# Users named by userId, or by an anonymous id or email mapped to them, locked in one
# order (workspace, id) so that concurrent batches cannot deadlock on them.
_LOCK_USERS = f"""
SELECT id, workspace_id, user_id, {_SELECT_COLUMNS}, page_views, first_seen_at, last_seen_at,
       traits, field_versions, touched_version
  FROM users
 WHERE (workspace_id, id) IN (
        SELECT u.workspace_id, u.id
          FROM users u
          JOIN jsonb_array_elements($1::jsonb) AS k
            ON u.workspace_id = (k ->> 0)::bigint AND u.user_id = k ->> 1
        UNION
        SELECT a.workspace_id, a.user_pk
          FROM anonymous_ids a
          JOIN jsonb_array_elements($2::jsonb) AS k
            ON a.workspace_id = (k ->> 0)::bigint AND a.anonymous_id = k ->> 1
        UNION
        SELECT e.workspace_id, e.user_pk
          FROM email_identities e
          JOIN jsonb_array_elements($3::jsonb) AS k
            ON e.workspace_id = (k ->> 0)::bigint AND e.email = k ->> 1)
 ORDER BY workspace_id, id
   FOR UPDATE
"""

_OWNERS = """
SELECT a.workspace_id, a.{column} AS id, a.user_pk, a.version
  FROM {table} a
  JOIN unnest($1::bigint[], $2::text[]) AS k (w, aid)
    ON a.workspace_id = k.w AND a.{column} = k.aid
"""

# How many anonymous ids and emails each identified user holds, for the cap.
_ANONYMOUS_COUNTS = """
SELECT user_pk, count(*) AS held
  FROM (SELECT workspace_id, user_pk FROM anonymous_ids
        UNION ALL
        SELECT workspace_id, user_pk FROM email_identities) AS a
  JOIN unnest($1::bigint[], $2::bigint[]) AS k (w, pk)
    ON a.workspace_id = k.w AND a.user_pk = k.pk
 GROUP BY user_pk
"""

_NEW_IDS = "SELECT nextval(pg_get_serial_sequence('users', 'id')) FROM generate_series(1, $1)"

# Rows travel as one JSON document: asyncpg checks every element of every array
# parameter in Python, which cost more than the whole statement on the server.
_UPSERT = f"""
INSERT INTO users (id, workspace_id, user_id, {_SELECT_COLUMNS}, page_views, first_seen_at,
                   last_seen_at, traits, field_versions, touched_version)
SELECT id, workspace_id, user_id, {_SELECT_COLUMNS}, page_views, first_seen_at,
       last_seen_at, traits, field_versions, touched_version
  FROM jsonb_to_recordset($1::jsonb) AS r (
       id bigint, workspace_id bigint, user_id text,
       {", ".join(f"{c} text" for c in COLUMNS)},
       page_views bigint, first_seen_at timestamptz, last_seen_at timestamptz,
       traits jsonb, field_versions jsonb, touched_version text)
ON CONFLICT (workspace_id, id) DO UPDATE SET
    user_id = EXCLUDED.user_id,
    {", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS)},
    page_views = EXCLUDED.page_views,
    first_seen_at = EXCLUDED.first_seen_at,
    last_seen_at = EXCLUDED.last_seen_at,
    traits = EXCLUDED.traits,
    field_versions = EXCLUDED.field_versions,
    touched_version = EXCLUDED.touched_version,
    updated_at = now()
"""

# Most users in a batch were only seen (a track or a page): their columns, traits and
# field versions stay as they are, and sending them back would cost both sides a
# parse of every user's field versions.
_UPDATE_SEEN = """
UPDATE users u SET
    page_views = r.page_views,
    first_seen_at = r.first_seen_at,
    last_seen_at = r.last_seen_at,
    touched_version = r.touched_version,
    updated_at = now()
  FROM jsonb_to_recordset($1::jsonb) AS r (
       id bigint, workspace_id bigint, page_views bigint, first_seen_at timestamptz,
       last_seen_at timestamptz, touched_version text)
 WHERE u.workspace_id = r.workspace_id AND u.id = r.id
"""

# New anonymous ids only; ids that already had an owner move with `merge`.
_MAP_ANONYMOUS_IDS = """
INSERT INTO {table} (workspace_id, {column}, user_pk, version)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[])
ON CONFLICT (workspace_id, {column}) DO NOTHING
"""

# The newest call that named an anonymous id with its owner.
_BUMP_ANONYMOUS_IDS = """
UPDATE {table} a SET version = greatest(a.version, k.version)
  FROM unnest($1::bigint[], $2::text[], $3::text[]) AS k (w, aid, version)
 WHERE a.workspace_id = k.w AND a.{column} = k.aid AND a.version < k.version
"""

_UPSERT_AUDIENCES = """
INSERT INTO audience_memberships AS am
       (workspace_id, user_pk, audience_key, member, computation_class, computation_id,
        space_id, version, updated_at)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::boolean[], $5::text[],
                     $6::text[], $7::text[], $8::text[], $9::timestamptz[])
ON CONFLICT (workspace_id, user_pk, audience_key) DO UPDATE SET
       member = EXCLUDED.member, computation_class = EXCLUDED.computation_class,
       computation_id = EXCLUDED.computation_id, space_id = EXCLUDED.space_id,
       version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
 WHERE EXCLUDED.version > am.version
"""


async def lock(
    conn: Conn,
    user_ids: Sequence[tuple[int, str]],
    anonymous_ids: Sequence[tuple[int, str]],
) -> list[User]:
    """Lock the users named by (workspace, userId) or by (workspace, anonymous id or
    marked email)."""
    anonymous, emails = _by_table(anonymous_ids)
    rows = await conn.fetch(_LOCK_USERS, list(user_ids), anonymous, emails)
    return [_user(r) for r in rows]


async def anonymous_id_owners(
    conn: Conn, anonymous_ids: Iterable[tuple[int, str]]
) -> dict[tuple[int, str], tuple[int, str]]:
    """The users owning these anonymous ids and marked emails, by pk, each with the newest
    call that named it with its owner."""
    owners: dict[tuple[int, str], tuple[int, str]] = {}
    for (table, column), part in zip(_SECONDARY_TABLES, _by_table(anonymous_ids), strict=True):
        if not part:
            continue
        mark = EMAIL_MARK if table == "email_identities" else ""
        rows = await conn.fetch(_OWNERS.format(table=table, column=column), *columnar(part, 2))
        owners |= {(r["workspace_id"], mark + r["id"]): (r["user_pk"], r["version"]) for r in rows}
    return owners


async def anonymous_id_counts(conn: Conn, users: Sequence[User]) -> dict[int, int]:
    """How many anonymous ids each of these (stored, identified) users holds, by pk."""
    identified = [u for u in users if u.user_id is not None]
    if not identified:
        return {}
    rows = await conn.fetch(
        _ANONYMOUS_COUNTS, [u.workspace_id for u in identified], [pk(u) for u in identified]
    )
    return {r["user_pk"]: r["held"] for r in rows}


async def assign_ids(conn: Conn, users: Sequence[User]) -> None:
    """Give new users their ids in one round trip, before anything refers to them."""
    if users:
        ids = await conn.fetch(_NEW_IDS, len(users))
        for user, (pk,) in zip(users, ids, strict=True):
            user.pk = pk


async def save(conn: Conn, users: Sequence[User]) -> None:
    """Write changed users: whole rows for new users and changed fields, counters and seen
    times only for the rest."""
    whole: list[User] = []
    seen: list[User] = []
    for user in users:
        (whole if user.new or user.fields_changed else seen).append(user)
    if seen:
        await conn.execute(
            _UPDATE_SEEN,
            [
                {
                    "id": u.pk,
                    "workspace_id": u.workspace_id,
                    "page_views": u.page_views,
                    "first_seen_at": u.first_seen_at,
                    "last_seen_at": u.last_seen_at,
                    "touched_version": u.touched,
                }
                for u in seen
            ],
        )
    if not whole:
        return
    rows = [
        {
            **u.columns,
            "id": u.pk,
            "workspace_id": u.workspace_id,
            "user_id": u.user_id,
            "page_views": u.page_views,
            "first_seen_at": u.first_seen_at,
            "last_seen_at": u.last_seen_at,
            "traits": u.traits,
            "field_versions": u.versions,
            "touched_version": u.touched,
        }
        for u in whole
    ]
    await conn.execute(_UPSERT, rows)


async def map_new_anonymous_ids(conn: Conn, mappings: Sequence[tuple[int, str, User, str]]) -> bool:
    """Give (workspace, anonymous id) their first owner at a version; False if another
    worker got to one first."""
    if not mappings:
        return True
    rows = [(ws, anonymous_id, pk(owner), version) for ws, anonymous_id, owner, version in mappings]
    mapped = 0
    for (table, column), part in zip(_SECONDARY_TABLES, _by_table(rows), strict=True):
        if part:
            statement = _MAP_ANONYMOUS_IDS.format(table=table, column=column)
            mapped += int((await conn.execute(statement, *columnar(part, 4))).split()[-1])
    return mapped == len(mappings)


async def bump_anonymous_ids(conn: Conn, versions: Sequence[tuple[int, str, str]]) -> None:
    """Record the newest call that named each (workspace, anonymous id) with its owner."""
    for (table, column), part in zip(_SECONDARY_TABLES, _by_table(versions), strict=True):
        if part:
            statement = _BUMP_ANONYMOUS_IDS.format(table=table, column=column)
            await conn.execute(statement, *columnar(part, 3))


def _by_table(rows: Iterable[tuple[Any, ...]]) -> tuple[list[Any], list[Any]]:
    """Rows whose second value is an anonymous id or a marked email, split by the table
    each is kept in (anonymous ids, emails), the mark removed."""
    anonymous: list[Any] = []
    emails: list[Any] = []
    for row in rows:
        if is_email_id(row[1]):
            emails.append((row[0], row[1].removeprefix(EMAIL_MARK), *row[2:]))
        else:
            anonymous.append(row)
    return anonymous, emails


async def save_memberships(conn: Conn, memberships: Sequence[Membership]) -> None:
    """Engage audiences of users: the newest call decides whether the user is a member."""
    held = [(m, m.holder.final()) for m in memberships if isinstance(m.holder, User)]
    if held:
        await conn.execute(_UPSERT_AUDIENCES, *audience_rows(held))


_FIRST_COLUMN = 3  # after id, workspace_id and user_id (`_LOCK_USERS`)


def _user(row: asyncpg.Record) -> User:
    # By position: a batch loads thousands of users, and two lookups by name per column
    # were a tenth of a worker's own time.
    values = tuple(row)[_FIRST_COLUMN : _FIRST_COLUMN + len(COLUMNS)]
    return User(
        workspace_id=row["workspace_id"],
        pk=row["id"],
        user_id=row["user_id"],
        columns={c: v for c, v in zip(COLUMNS, values, strict=True) if v is not None},
        traits=row["traits"],
        versions=row["field_versions"],
        page_views=row["page_views"],
        first_seen_at=row["first_seen_at"],
        last_seen_at=row["last_seen_at"],
        touched=row["touched_version"],
    )
