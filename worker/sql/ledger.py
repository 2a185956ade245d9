"""SQL for what a worker must remember between batches besides the calls themselves
(`journal`): tombstones, blocked identities, and the connector settings calls are applied
under."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sextant.calls import IdentityKey
from sextant.db import Conn
from worker.rules.free_email import EmailStatus
from worker.rules.records import Tombstone, User
from worker.sql.arrays import columnar, pk

# Tombstones and blocks of the same identities, in one round trip.
_IDENTITY_FACTS = """
WITH k AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[]) AS k (w, kind, identity))
SELECT true AS tombstone, t.workspace_id, t.kind, t.identity, t.version, t.user_id,
       t.received_at, true AS blocked, '' AS newest
  FROM tombstones t
  JOIN k ON t.workspace_id = k.w AND t.kind = k.kind AND t.identity = k.identity
UNION ALL
SELECT false, b.workspace_id, b.kind, b.identity, b.version, NULL, NULL, b.blocked, b.newest
  FROM blocked_identities b
  JOIN k ON b.workspace_id = k.w AND b.kind = k.kind AND b.identity = k.identity
"""

_UPSERT_TOMBSTONES = """
INSERT INTO tombstones AS t (workspace_id, kind, identity, version, user_id, received_at)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                     $6::timestamptz[])
ON CONFLICT (workspace_id, kind, identity) DO UPDATE
   SET version = greatest(t.version, EXCLUDED.version),
       user_id = CASE WHEN EXCLUDED.version >= t.version
                      THEN coalesce(EXCLUDED.user_id, t.user_id) ELSE t.user_id END,
       received_at = greatest(t.received_at, EXCLUDED.received_at)
"""

# A deleted user's anonymous ids and emails get tombstones too, naming the user they
# belonged to.
_TOMBSTONE_ANONYMOUS_IDS = """
INSERT INTO tombstones AS t (workspace_id, kind, identity, version, user_id, received_at)
SELECT a.workspace_id, a.kind, a.identity, d.version, d.user_id, d.received_at
  FROM (SELECT workspace_id, 'anonymous_id' AS kind, anonymous_id AS identity, user_pk
          FROM anonymous_ids
        UNION ALL
        SELECT workspace_id, 'email', email, user_pk FROM email_identities) AS a
  JOIN unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::timestamptz[])
       AS d (w, user_pk, version, user_id, received_at)
    ON a.workspace_id = d.w AND a.user_pk = d.user_pk
ON CONFLICT (workspace_id, kind, identity) DO UPDATE
   SET version = greatest(t.version, EXCLUDED.version),
       user_id = CASE WHEN EXCLUDED.version >= t.version
                      THEN coalesce(EXCLUDED.user_id, t.user_id) ELSE t.user_id END,
       received_at = greatest(t.received_at, EXCLUDED.received_at)
"""

_SAVE_STATUSES = """
INSERT INTO blocked_identities AS b (workspace_id, kind, identity, version, blocked, newest)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::boolean[],
                     $6::text[])
ON CONFLICT (workspace_id, kind, identity) DO UPDATE
   SET blocked = CASE WHEN EXCLUDED.version >= b.version THEN EXCLUDED.blocked
                      ELSE b.blocked END,
       version = greatest(b.version, EXCLUDED.version),
       newest = greatest(b.newest, EXCLUDED.newest)
"""

_CONNECTORS = """
SELECT workspace_id, id, block_free_email_users
  FROM connectors
 WHERE id = ANY($1::bigint[])
"""

_WORKSPACES = "SELECT id FROM workspaces WHERE id = ANY($1::bigint[])"


async def identity_facts(
    conn: Conn, keys: set[IdentityKey]
) -> tuple[dict[IdentityKey, Tombstone], dict[IdentityKey, EmailStatus]]:
    """The tombstones of these identities, and their free-email statuses."""
    if not keys:
        return {}, {}
    tombstones: dict[IdentityKey, Tombstone] = {}
    statuses: dict[IdentityKey, EmailStatus] = {}
    for r in await conn.fetch(_IDENTITY_FACTS, *columnar(keys, 3)):
        key: IdentityKey = (r["workspace_id"], r["kind"], r["identity"])
        if r["tombstone"]:
            tombstones[key] = Tombstone(r["version"], r["user_id"], r["received_at"])
        else:
            statuses[key] = EmailStatus(r["version"], r["blocked"], r["newest"])
    return tombstones, statuses


async def save_tombstones(conn: Conn, tombstones: dict[IdentityKey, Tombstone]) -> None:
    if tombstones:
        keys = sorted(tombstones)
        await conn.execute(
            _UPSERT_TOMBSTONES,
            *columnar(keys, 3),
            [tombstones[k].version for k in keys],
            [tombstones[k].user_id for k in keys],
            [tombstones[k].received for k in keys],
        )


async def tombstone_anonymous_ids(
    conn: Conn, gone: Sequence[tuple[User, Tombstone]], cuts: Sequence[tuple[User, Tombstone]]
) -> None:
    """Tombstones on the anonymous ids of users deleted (`gone`) or cut by a delete, naming
    the user they belonged to."""
    marked = [(u.workspace_id, pk(u), t.version, t.user_id or "", t.received) for u, t in gone] + [
        (u.workspace_id, pk(u), t.version, u.user_id or "", t.received) for u, t in cuts
    ]
    if marked:
        await conn.execute(_TOMBSTONE_ANONYMOUS_IDS, *columnar(marked, 5))


async def save_statuses(conn: Conn, statuses: dict[IdentityKey, EmailStatus]) -> None:
    """Free-email statuses set or judged by the batch."""
    if statuses:
        keys = sorted(statuses)
        rows = [(*k, statuses[k].version, statuses[k].blocked, statuses[k].newest) for k in keys]
        await conn.execute(_SAVE_STATUSES, *columnar(rows, 6))


async def blocking_connectors(conn: Conn, connector_ids: Iterable[int]) -> set[int]:
    """The connectors among these that block free-email users."""
    rows = await conn.fetch(_CONNECTORS, sorted(set(connector_ids)))
    return {r["id"] for r in rows if r["block_free_email_users"]}


async def existing_workspaces(conn: Conn, workspace_ids: Iterable[int]) -> set[int]:
    """The workspaces among these that Postgres has."""
    return {r["id"] for r in await conn.fetch(_WORKSPACES, sorted(set(workspace_ids)))}
