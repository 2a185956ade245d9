"""Users rebuilt from their calls, for a call that arrived after newer calls whose fate it
changes: a delete (it removes what was received before it, whatever time that carries),
an anonymous id claimed earlier by another userId, an email identify setting a
free-email status, a call older than such a status.

The users those calls lead to, and every identity linked to them through a call naming
two, are removed with what hangs off them and applied again from the journal in
call-time order, as if every call had arrived in order. So the rows never depend on the
order calls arrive in; what arrives in order (nearly everything) is never rebuilt.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from sextant.calls import AnyCall, Delete, IdentityKey
from sextant.db import Conn
from worker.apply import apply_in_order
from worker.rules.identity import secondary_of
from worker.rules.records import User
from worker.rules.state import Limits
from worker.sql import journal, user_rows, users

log = structlog.get_logger()

# A rebuild larger than this is not attempted (its calls stay as they were applied): one
# identity shared by a crowd must not turn one late call into a rewrite of everything.
MAX_REBUILD_CALLS = 20_000


async def rebuild(conn: Conn, seeds: set[IdentityKey], limits: Limits) -> int:
    """Rebuild the users linked to these identities; returns how many calls were applied
    again."""
    rebuilt = 0
    for ws in sorted({k[0] for k in seeds}):
        rebuilt += await _rebuild(conn, ws, {k for k in seeds if k[0] == ws}, limits)
    return rebuilt


async def _rebuild(conn: Conn, ws: int, seeds: set[IdentityKey], limits: Limits) -> int:
    keys = seeds
    while True:
        found = await journal.component(conn, ws, keys, MAX_REBUILD_CALLS)
        if found is None:
            log.warning("rebuild_skipped", workspace_id=ws, reason="too many calls")
            return 0
        identities, calls = found
        stored = await _lock(conn, identities)
        held = await journal.held_identities(conn, stored)
        if held <= identities:
            break
        keys = identities | held  # ids the journal does not link, held all the same
    if await journal.predates_journal(conn, ws, stored):
        log.warning("rebuild_skipped", workspace_id=ws, reason="users older than the journal")
        return 0
    await user_rows.delete(conn, stored)
    await journal.wipe_identity_facts(conn, ws, identities)
    for segment in _segments(calls):
        await apply_in_order(conn, segment, limits, replaying=True)
    log.info("rebuilt", workspace_id=ws, users=len(stored), calls=len(calls))
    return len(calls)


async def _lock(conn: Conn, identities: Iterable[IdentityKey]) -> list[User]:
    user_ids, secondaries = [], []
    for key in identities:
        secondary = secondary_of(key)
        if secondary is None:
            user_ids.append((key[0], key[2]))
        else:
            secondaries.append((key[0], secondary))
    return await users.lock(conn, sorted(user_ids), sorted(secondaries))


def _segments(calls: list[AnyCall]) -> list[list[AnyCall]]:
    """The calls in call-time order, cut after each delete: a delete's verdict is reached
    at the end of its batch, as it would be had the calls arrived one by one."""
    segments: list[list[AnyCall]] = [[]]
    for call in sorted(calls, key=lambda c: c.version):
        segments[-1].append(call)
        if type(call) is Delete:
            segments.append([])
    return [s for s in segments if s]
