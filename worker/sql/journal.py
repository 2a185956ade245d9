"""SQL for the call journal: every applied call, kept under its (workspace, messageId), so
that a messageId is applied once, and found again by the identities it names, so that users
can be rebuilt from their calls in call-time order (see `worker.rebuild`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from sextant.calls import AnyCall, IdentityKey, decode_call
from sextant.db import Conn
from worker.rules.records import Tombstone, User
from worker.rules.tombstones import what_a_delete_keeps
from worker.sql.arrays import columnar, pk

_encoder = msgspec.json.Encoder()

# Claiming a call is writing its journal row: the first to insert it applies it. The rows
# travel as one JSON document (see users.py for why not arrays), typed `json` rather than
# `jsonb`: a `json` value keeps its text as sent, so each body, a JSON object in it, is
# stored byte for byte as the worker encoded it, and parsed only once.
_CLAIM = """
INSERT INTO call_journal (workspace_id, message_id, identities, version, body)
SELECT w, m, i, v, convert_to(b::text, 'UTF8')
  FROM json_to_recordset($1::json) AS r (w bigint, m text, i text[], v text, b json)
ON CONFLICT DO NOTHING
RETURNING workspace_id, message_id
"""


class _Row(msgspec.Struct):
    """A call as `_CLAIM` reads it: workspace, messageId, identities, version, body."""

    w: int
    m: str
    i: list[str]
    v: str
    b: msgspec.Raw


_IDENTITIES_NAMING = """
SELECT identities FROM call_journal WHERE workspace_id = $1 AND identities && $2::text[]
"""

_CALLS_NAMING = """
SELECT body FROM call_journal WHERE workspace_id = $1 AND identities && $2::text[]
"""

# The identities whose rows a rebuild writes again: every user named, every anonymous id
# and email those users hold.
_HELD = """
SELECT a.anonymous_id AS identity, 'anonymous_id' AS kind
  FROM anonymous_ids a WHERE a.workspace_id = $1 AND a.user_pk = ANY($2::bigint[])
UNION ALL
SELECT e.email, 'email' FROM email_identities e
 WHERE e.workspace_id = $1 AND e.user_pk = ANY($2::bigint[])
"""

# What the rules derived for identities: kept by (kind, identity), or by owned id.
_WIPE_BY_KIND = [
    f"""DELETE FROM {table} x USING unnest($2::text[], $3::text[]) AS k (kind, identity)
         WHERE x.workspace_id = $1 AND x.kind = k.kind AND x.identity = k.identity"""
    for table in ("tombstones", "blocked_identities")
]
_WIPE_OWNED = {
    kind: f"DELETE FROM {table} WHERE workspace_id = $1 AND {column} = ANY($2::text[])"
    for kind, table, column in (
        ("anonymous_id", "anonymous_ids", "anonymous_id"),
        ("email", "email_identities", "email"),
    )
}

# Users created before the journal began have calls it does not hold: never rebuilt.
_PREDATES_JOURNAL = """
SELECT count(*) FROM users
 WHERE workspace_id = $1 AND id = ANY($2::bigint[])
   AND created_at < (SELECT applied_at FROM schema_migrations WHERE version = 10)
"""


_DELETED = """
SELECT version, received_at FROM tombstones
 WHERE workspace_id = $1 AND kind = 'user_id' AND identity = $2
"""

_REPLACE_BODIES = """
UPDATE call_journal j SET body = r.body
  FROM unnest($1::bigint[], $2::text[], $3::bytea[]) AS r (w, message_id, body)
 WHERE j.workspace_id = r.w AND j.message_id = r.message_id
"""


_NEWEST_NAMING = """
SELECT i AS identity, max(j.version) AS version
  FROM call_journal j, unnest(j.identities) AS i
 WHERE j.workspace_id = $1 AND j.identities && $2::text[]
   AND NOT j.message_id = ANY($3::text[]) AND i = ANY($2::text[])
 GROUP BY i
"""


def encoded(key: IdentityKey) -> str:
    return f"{key[1]}:{key[2]}"


def decoded(workspace_id: int, text: str) -> IdentityKey:
    kind, _, value = text.partition(":")
    return (workspace_id, kind, value)


async def claim(conn: Conn, calls: Sequence[AnyCall]) -> list[AnyCall]:
    """Journal the calls whose messageId was not applied before, and return them in the
    order given; of a messageId twice in `calls`, the first."""
    first: dict[tuple[int, str], AnyCall] = {}
    for call in calls:
        first.setdefault((call.workspace_id, call.messageId), call)
    rows = [
        _Row(*key, [encoded(k) for k in c.identities], c.version, msgspec.Raw(_encoder.encode(c)))
        for key, c in sorted(first.items())  # one lock order for every batch
    ]
    if not rows:
        return []
    claimed = await conn.fetch(_CLAIM, _encoder.encode(rows).decode())
    new = {(r["workspace_id"], r["message_id"]) for r in claimed}
    return [c for key, c in first.items() if key in new]


async def component(
    conn: Conn, workspace_id: int, seeds: Iterable[IdentityKey], limit: int
) -> set[IdentityKey] | None:
    """Every identity linked to the seeds through calls naming two of them; None when
    those are more than `limit` calls."""
    found = {encoded(k) for k in seeds}
    frontier = set(found)
    while frontier:
        # All the calls naming what is found so far: their count bounds the rebuild.
        rows = await conn.fetch(_IDENTITIES_NAMING, workspace_id, sorted(found))
        if len(rows) > limit:
            return None
        frontier = {i for row in rows for i in row["identities"]} - found
        found |= frontier
    return {decoded(workspace_id, i) for i in found}


async def calls_naming(conn: Conn, workspace_id: int, keys: Iterable[IdentityKey]) -> list[AnyCall]:
    """The calls that name any of these identities."""
    rows = await conn.fetch(_CALLS_NAMING, workspace_id, sorted(encoded(k) for k in keys))
    return [decode_call(r["body"]) for r in rows]


async def held_identities(conn: Conn, users: Sequence[User]) -> set[IdentityKey]:
    """The anonymous ids and emails these stored users hold."""
    held: set[IdentityKey] = set()
    for ws in {u.workspace_id for u in users}:
        pks = [pk(u) for u in users if u.workspace_id == ws]
        held |= {(ws, r["kind"], r["identity"]) for r in await conn.fetch(_HELD, ws, pks)}
    return held


async def predates_journal(conn: Conn, workspace_id: int, users: Sequence[User]) -> bool:
    pks = [pk(u) for u in users]
    return bool(pks) and bool(await conn.fetchval(_PREDATES_JOURNAL, workspace_id, pks))


async def wipe_identity_facts(conn: Conn, workspace_id: int, keys: set[IdentityKey]) -> None:
    """Forget what the rules derived for these identities: tombstones, free-email
    statuses and owners; a rebuild derives them again from the calls."""
    kinds, values = columnar(((k[1], k[2]) for k in sorted(keys)), 2)
    for statement in _WIPE_BY_KIND:
        await conn.execute(statement, workspace_id, kinds, values)
    for kind, statement in _WIPE_OWNED.items():
        await conn.execute(statement, workspace_id, [k[2] for k in keys if k[1] == kind])


async def keep_only_what_deletes_keep(
    conn: Conn, deleted: set[tuple[int, str]], ignored: Sequence[AnyCall]
) -> None:
    """Strip the journal's copy of every call a delete removed for good down to what a
    replay needs (`what_a_delete_keeps`): the calls naming a deleted userId that its
    tombstone removes, and calls naming a userId just ignored for its delete.

    Calls without a userId stay as they are: their anonymous id may yet turn out to be
    another user's (an earlier claim arriving later), and a replay must give that user
    the calls whole."""
    removed = {(c.workspace_id, c.messageId): c for c in ignored if c.user_id is not None}
    for ws, user_id in sorted(deleted):
        row = await conn.fetchrow(_DELETED, ws, user_id)
        if row is None:
            continue
        tombstone = Tombstone(row["version"], user_id, row["received_at"])
        for call in await calls_naming(conn, ws, [(ws, "user_id", user_id)]):
            if call.user_id == user_id and tombstone.ignores(call.version, call.receivedAt):
                removed[(ws, call.messageId)] = call
    if removed:
        stripped = [(*k, _encoder.encode(what_a_delete_keeps(c))) for k, c in removed.items()]
        await conn.execute(_REPLACE_BODIES, *columnar(stripped, 3))


async def newest_naming(
    conn: Conn, keys: set[IdentityKey], besides: set[str]
) -> dict[IdentityKey, str]:
    """The newest call naming each identity, other than the calls `besides` (messageIds)."""
    newest: dict[IdentityKey, str] = {}
    for ws in sorted({k[0] for k in keys}):
        named = sorted(encoded(k) for k in keys if k[0] == ws)
        for row in await conn.fetch(_NEWEST_NAMING, ws, named, sorted(besides)):
            newest[decoded(ws, row["identity"])] = row["version"]
    return newest
