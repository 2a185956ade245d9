"""A batch of calls in one transaction: claim, apply, rebuild what came late.

Claim keeps only calls whose messageId was not applied before, and writes them to the
call journal (`worker.sql.journal`), which is also the record of what was applied. They
are applied where they stand (`worker.apply`), and the users of a call that arrived after
newer calls whose fate it changes are rebuilt from their calls in call-time order
(`worker.rebuild`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sextant.calls import AnyCall, Delete, IdentityKey, IngestionWarning
from sextant.db import Conn
from worker.apply import Fates, apply_in_order, call_type
from worker.rebuild import linked as rebuild_linked
from worker.rebuild import rebuild
from worker.rules.state import DEFAULT_LIMITS, Changes, Limits
from worker.sql import journal, ledger, warnings


@dataclass
class Outcome:
    """What became of a batch's calls, for metrics and logs."""

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)  # (call type, outcome)
    warnings: Counter[str] = field(default_factory=Counter)  # by kind, recorded or not
    # Calls that cannot be applied, and why: they are neither applied nor claimed.
    refused: list[tuple[AnyCall, str]] = field(default_factory=list)
    rebuilt: int = 0  # calls applied again to rebuild users from their history

    def add(self, other: Outcome) -> None:
        self.calls.update(other.calls)
        self.warnings.update(other.warnings)
        self.refused += other.refused
        self.rebuilt += other.rebuilt


async def apply_calls(conn: Conn, calls: list[AnyCall], limits: Limits = DEFAULT_LIMITS) -> Outcome:
    """Apply `calls` exactly once each, in one transaction."""
    outcome = Outcome()
    async with conn.transaction():
        calls = await _without_missing_workspaces(conn, calls, outcome)
        fresh = await _claim(conn, calls, outcome)
        late, changes, fates = await _apply_on_time(conn, fresh, limits)
        found = changes.warnings
        if late:
            replayed = await rebuild(conn, late, limits, _keys(fresh))
            fates |= replayed.fates
            found = found + replayed.warnings
            outcome.rebuilt += replayed.calls
        await _forget_what_deletes_removed(conn, fresh, fates)
        for call in fresh:
            outcome.calls[(call_type(call), fates[(call.workspace_id, call.messageId)])] += 1
        rows = _warnings(fresh, found)
        # Last: the tallies' row locks are held only until the commit just after.
        await warnings.record(conn, rows)
        outcome.warnings.update(w["kind"] for w in rows)
    return outcome


async def _apply_on_time(
    conn: Conn, calls: list[AnyCall], limits: Limits
) -> tuple[set[IdentityKey], Changes, Fates]:
    """Apply the calls that can be applied where they stand; returns the identities whose
    users must be rebuilt instead (their calls left out here), the changes and fates.

    A late call is found as the batch applies; the batch is then undone (a savepoint) and
    applied again without the calls of the users it links, which `rebuild` replays."""
    late: set[IdentityKey] = set()
    kept_as_applied: set[IdentityKey] = set()  # too large to rebuild: applied as they come
    while True:
        fates: Fates = {}
        savepoint = conn.transaction()
        await savepoint.start()
        try:
            on_time = [c for c in calls if late.isdisjoint(c.identities)]
            changes = await apply_in_order(conn, on_time, limits, fates)
        except BaseException:
            await savepoint.rollback()
            raise
        seeds = changes.rebuild - kept_as_applied
        if not seeds:
            await savepoint.commit()
            return late, changes, fates
        await savepoint.rollback()
        linked = await rebuild_linked(conn, seeds)
        if linked is None:
            kept_as_applied |= seeds
        else:
            late |= linked


async def _forget_what_deletes_removed(conn: Conn, calls: list[AnyCall], fates: Fates) -> None:
    """A delete is a privacy request: the journal keeps of the calls it removes only what a
    replay needs to decide the same owners (never traits, properties or context)."""
    deleted = {(c.workspace_id, c.user_id) for c in calls if type(c) is Delete and c.user_id}
    ignored = [c for c in calls if fates[(c.workspace_id, c.messageId)] == "deleted"]
    if deleted or ignored:
        await journal.keep_only_what_deletes_keep(conn, deleted, ignored)


def _keys(calls: list[AnyCall]) -> set[tuple[int, str]]:
    return {(c.workspace_id, c.messageId) for c in calls}


def _warnings(
    calls: list[AnyCall], by_rules: list[tuple[AnyCall, IngestionWarning]]
) -> list[dict[str, Any]]:
    """What the receiver mended in these calls, then what the rules found, as rows."""
    found = [(call, w) for call in calls for w in call.sextant.warnings] + by_rules
    return [_row(call, w) for call, w in found]


def _row(call: AnyCall, warning: IngestionWarning) -> dict[str, Any]:
    return {
        "workspace_id": call.workspace_id,
        "kind": warning.kind,
        "minute": warnings.minute_of(call.receivedAt),
        "message_id": call.messageId,
        "user_id": call.user_id,
        "anonymous_id": call.anonymous_id,
        "detail": warning.detail,
    }


async def _without_missing_workspaces(
    conn: Conn, calls: list[AnyCall], outcome: Outcome
) -> list[AnyCall]:
    """Calls of a workspace Postgres does not have are refused before anything is written
    for them (their messageIds stay unclaimed), so that once the workspace is restored,
    `sextant dlq replay` applies them."""
    existing = await ledger.existing_workspaces(conn, (c.workspace_id for c in calls))
    if len(existing) == len({c.workspace_id for c in calls}):
        return calls
    for call in calls:
        if call.workspace_id not in existing:
            outcome.refused.append((call, f"no workspace {call.workspace_id} in the database"))
    return [c for c in calls if c.workspace_id in existing]


async def _claim(conn: Conn, calls: list[AnyCall], outcome: Outcome) -> list[AnyCall]:
    """The calls whose messageId was not applied before; a messageId twice in one batch is
    applied once."""
    fresh = await journal.claim(conn, calls)
    if len(fresh) < len(calls):
        duplicates = Counter(map(call_type, calls)) - Counter(map(call_type, fresh))
        for kind, n in duplicates.items():
            outcome.calls[(kind, "duplicate")] += n
    return fresh
