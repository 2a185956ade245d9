"""SQL for the rows that hang off a user: moved to the user a merge keeps, cut by a delete
that newer calls survive, removed with the user."""

from __future__ import annotations

from collections.abc import Sequence

from sextant.db import Conn
from worker.rules.records import User, split_version
from worker.sql.arrays import columnar, pk

# A merged-away user's rows move to the user it was merged into, then it is deleted.
_MOVE_CHILDREN = [
    """UPDATE events e SET user_pk = m.winner
         FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS m (w, loser, winner)
        WHERE e.workspace_id = m.w AND e.user_pk = m.loser""",
    """UPDATE page_views p SET user_pk = m.winner
         FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS m (w, loser, winner)
        WHERE p.workspace_id = m.w AND p.user_pk = m.loser""",
    *(
        f"""UPDATE {table} a SET user_pk = m.winner
             FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS m (w, loser, winner)
            WHERE a.workspace_id = m.w AND a.user_pk = m.loser"""
        for table in ("anonymous_ids", "email_identities")
    ),
    """INSERT INTO account_users (workspace_id, account_pk, user_pk, version, created_at)
       SELECT au.workspace_id, au.account_pk, m.winner, au.version, au.created_at
         FROM account_users au
         JOIN unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS m (w, loser, winner)
           ON au.workspace_id = m.w AND au.user_pk = m.loser
       ON CONFLICT (workspace_id, account_pk, user_pk) DO UPDATE SET
              version = greatest(account_users.version, EXCLUDED.version),
              created_at = least(account_users.created_at, EXCLUDED.created_at)""",
    """INSERT INTO account_user_endings AS x (workspace_id, account_pk, user_pk, version)
       SELECT e.workspace_id, e.account_pk, m.winner, e.version
         FROM account_user_endings e
         JOIN unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS m (w, loser, winner)
           ON e.workspace_id = m.w AND e.user_pk = m.loser
       ON CONFLICT (workspace_id, account_pk, user_pk) DO UPDATE SET
              version = greatest(x.version, EXCLUDED.version)""",
    # Together, the two users' newest ending may be newer than a membership one of them had.
    """DELETE FROM account_users au
         USING account_user_endings e,
               unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS m (w, loser, winner)
        WHERE au.workspace_id = m.w AND au.user_pk = m.winner
          AND e.workspace_id = m.w AND e.user_pk = m.winner AND e.account_pk = au.account_pk
          AND au.version < e.version""",
    """INSERT INTO audience_memberships AS am
              (workspace_id, user_pk, audience_key, member, computation_class,
               computation_id, space_id, version, updated_at)
       SELECT x.workspace_id, m.winner, x.audience_key, x.member, x.computation_class,
              x.computation_id, x.space_id, x.version, x.updated_at
         FROM audience_memberships x
         JOIN unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS m (w, loser, winner)
           ON x.workspace_id = m.w AND x.user_pk = m.loser
       ON CONFLICT (workspace_id, user_pk, audience_key) DO UPDATE SET
              member = EXCLUDED.member, computation_class = EXCLUDED.computation_class,
              computation_id = EXCLUDED.computation_id, space_id = EXCLUDED.space_id,
              version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
        WHERE EXCLUDED.version > am.version""",
]

# What a delete at (time, messageId) leaves of a user that newer calls keep alive.
_FORGET_BEFORE = [
    """DELETE FROM events e
         USING unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[])
               AS p (w, pk, t, mid, version)
        WHERE e.workspace_id = p.w AND e.user_pk = p.pk
          AND (e.occurred_at, e.message_id) < (p.t, p.mid)""",
    """DELETE FROM page_views v
         USING unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[])
               AS p (w, pk, t, mid, version)
        WHERE v.workspace_id = p.w AND v.user_pk = p.pk
          AND (v.occurred_at, v.message_id) < (p.t, p.mid)""",
    """DELETE FROM account_users x
         USING unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[])
               AS p (w, pk, t, mid, version)
        WHERE x.workspace_id = p.w AND x.user_pk = p.pk AND x.version < p.version""",
    """DELETE FROM account_user_endings x
         USING unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[])
               AS p (w, pk, t, mid, version)
        WHERE x.workspace_id = p.w AND x.user_pk = p.pk AND x.version < p.version""",
    """DELETE FROM audience_memberships x
         USING unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[])
               AS p (w, pk, t, mid, version)
        WHERE x.workspace_id = p.w AND x.user_pk = p.pk AND x.version < p.version""",
    *(
        f"""DELETE FROM {table} x
             USING unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[])
                   AS p (w, pk, t, mid, version)
            WHERE x.workspace_id = p.w AND x.user_pk = p.pk AND x.version < p.version"""
        for table in ("anonymous_ids", "email_identities")
    ),
    # Counters and seen times are what the remaining rows say.
    """UPDATE users u SET
              page_views = (SELECT count(*) FROM page_views v
                             WHERE v.workspace_id = u.workspace_id AND v.user_pk = u.id),
              first_seen_at = least(
                  (SELECT min(occurred_at) FROM events e
                    WHERE e.workspace_id = u.workspace_id AND e.user_pk = u.id),
                  (SELECT min(occurred_at) FROM page_views v
                    WHERE v.workspace_id = u.workspace_id AND v.user_pk = u.id)),
              last_seen_at = greatest(
                  (SELECT max(occurred_at) FROM events e
                    WHERE e.workspace_id = u.workspace_id AND e.user_pk = u.id),
                  (SELECT max(occurred_at) FROM page_views v
                    WHERE v.workspace_id = u.workspace_id AND v.user_pk = u.id))
         FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[])
              AS p (w, pk, t, mid, version)
        WHERE u.workspace_id = p.w AND u.id = p.pk""",
]

# A user and every row that hangs off it (there are no cascading keys: see 0002).
_DELETE = [
    *(
        f"""DELETE FROM {table} x USING unnest($1::bigint[], $2::bigint[]) AS d (w, id)
             WHERE x.workspace_id = d.w AND x.user_pk = d.id"""
        for table in (
            "events",
            "page_views",
            "account_users",
            "account_user_endings",
            "audience_memberships",
            "anonymous_ids",
            "email_identities",
        )
    ),
    """DELETE FROM users u USING unnest($1::bigint[], $2::bigint[]) AS d (w, id)
        WHERE u.workspace_id = d.w AND u.id = d.id""",
]


async def forget_before(conn: Conn, cuts: Sequence[tuple[User, str]]) -> None:
    """For each (user, delete version), remove what is older than the delete."""
    if not cuts:
        return
    rows = [(u.workspace_id, pk(u), *split_version(version), version) for u, version in cuts]
    columns = columnar(rows, 5)
    for statement in _FORGET_BEFORE:
        await conn.execute(statement, *columns)


async def merge(conn: Conn, merges: Sequence[tuple[User, User]]) -> None:
    """Move the rows of each (loser, winner) to the winner, then delete the loser."""
    if not merges:
        return
    columns = columnar(((loser.workspace_id, pk(loser), pk(winner)) for loser, winner in merges), 3)
    for statement in _MOVE_CHILDREN:
        await conn.execute(statement, *columns)
    await _delete(conn, columns[0], columns[1])


async def delete(conn: Conn, users: Sequence[User]) -> None:
    """Delete users; their anonymous ids, events, page views and memberships go with them."""
    if users:
        await _delete(conn, [u.workspace_id for u in users], [pk(u) for u in users])


async def _delete(conn: Conn, workspace_ids: list[int], pks: list[int]) -> None:
    for statement in _DELETE:
        await conn.execute(statement, workspace_ids, pks)
