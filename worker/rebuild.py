"""Users rebuilt from their calls, for a call that arrived after newer calls whose fate it
changes: a delete (it removes what was received before it, whatever time that carries),
an anonymous id claimed earlier by another userId, an email identify setting a
free-email status, a call older than such a status (see `worker.rules.late`).

The users those calls lead to, and every identity linked to them through a call naming
two, are removed with what hangs off them and applied again from the journal in
call-time order, as if every call had arrived in order. So the rows never depend on the
order calls arrive in; what arrives in order (nearly everything) is never rebuilt.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import structlog

from sextant.calls import AnyCall, Delete, IdentityKey, IngestionWarning
from sextant.db import Conn
from worker.apply import Fates, apply_in_order
from worker.rules.identity import split_identities
from worker.rules.records import User
from worker.rules.state import Limits
from worker.sql import journal, user_rows, users, warnings

log = structlog.get_logger()

# A rebuild larger than this is not attempted (its calls stay as they were applied): one
# identity shared by a crowd must not turn one late call into a rewrite of everything.
MAX_REBUILD_CALLS = 20_000


@dataclass
class Replayed:
    """What a rebuild applied again, and what became of the batch's own calls in it."""

    calls: int = 0
    fates: Fates = field(default_factory=dict)
    warnings: list[tuple[AnyCall, IngestionWarning]] = field(default_factory=list)


async def linked(conn: Conn, seeds: set[IdentityKey]) -> set[IdentityKey] | None:
    """Every identity linked to the seeds: through calls naming two, or held by one user.
    None when the users cannot be rebuilt: too many calls, or users older than the
    journal."""
    keys: set[IdentityKey] = set()
    for ws in sorted({k[0] for k in seeds}):
        found = await _linked(conn, ws, {k for k in seeds if k[0] == ws})
        if found is None:
            return None
        keys |= found
    return keys


async def _linked(conn: Conn, ws: int, seeds: set[IdentityKey]) -> set[IdentityKey] | None:
    keys = seeds
    while True:
        found = await journal.component(conn, ws, keys, MAX_REBUILD_CALLS)
        if found is None:
            log.warning("rebuild_skipped", workspace_id=ws, reason="too many calls")
            return None
        stored = await _lock(conn, found)
        held = await journal.held_identities(conn, stored)
        if held <= found:
            break
        keys = found | held  # ids the journal does not link, held all the same
    if await journal.predates_journal(conn, ws, stored):
        log.warning("rebuild_skipped", workspace_id=ws, reason="users older than the journal")
        return None
    return found


async def rebuild(
    conn: Conn, keys: set[IdentityKey], limits: Limits, fresh: set[tuple[int, str]]
) -> Replayed:
    """Remove the users of these identities (as `linked` found them) and apply their calls
    again in call-time order. Warnings: all for the batch's own calls (`fresh`), and for
    older calls those they have not had yet."""
    replayed = Replayed()
    for ws in sorted({k[0] for k in keys}):
        identities = {k for k in keys if k[0] == ws}
        calls = await journal.calls_naming(conn, ws, identities)
        await user_rows.delete(conn, await _lock(conn, identities))
        await journal.wipe_identity_facts(conn, ws, identities)
        found: list[tuple[AnyCall, IngestionWarning]] = []
        for segment in _segments(calls):
            changes = await apply_in_order(conn, segment, limits, replayed.fates, replaying=True)
            found += changes.warnings
        replayed.warnings += await _not_recorded_yet(conn, ws, found, fresh)
        replayed.calls += len(calls)
        log.info("rebuilt", workspace_id=ws, calls=len(calls))
    return replayed


async def _not_recorded_yet(
    conn: Conn,
    ws: int,
    found: list[tuple[AnyCall, IngestionWarning]],
    fresh: set[tuple[int, str]],
) -> list[tuple[AnyCall, IngestionWarning]]:
    """The warnings the replay found: all of the batch's own calls, and those of calls
    applied before that they do not have yet (a claim they lost, a block they fall under)."""
    older = sorted({c.messageId for c, _ in found if (ws, c.messageId) not in fresh})
    recorded = await warnings.kinds_recorded(conn, ws, older) if older else set()
    return [
        (c, w)
        for c, w in found
        if (ws, c.messageId) in fresh or (c.messageId, w.kind) not in recorded
    ]


async def _lock(conn: Conn, identities: Iterable[IdentityKey]) -> list[User]:
    return await users.lock(conn, *split_identities(identities))


def _segments(calls: list[AnyCall]) -> list[list[AnyCall]]:
    """The calls in call-time order, cut after each delete: a delete's verdict is reached
    at the end of its batch, as it is when calls arrive one at a time."""
    segments: list[list[AnyCall]] = [[]]
    for call in sorted(calls, key=lambda c: c.version):
        segments[-1].append(call)
        if type(call) is Delete:
            segments.append([])
    return [s for s in segments if s]
