"""A batch of calls in one transaction: claim, load and lock, apply, flush.

Claim records each messageId as applied and keeps only calls not applied before. Load
reads and locks every row the batch touches (one statement per table); row locks are
always taken in the same order, so batches running at the same time in other workers
wait for each other instead of deadlocking. The pure rules (`worker.rules`) then apply
the calls in memory, and flush writes what changed (one statement per table).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sextant.calls import AnyCall, Group, Identify, IngestionWarning, Track
from sextant.db import Conn
from sextant.errors import BatchConflict
from worker.rules.accounts import named_groups as accounts_named
from worker.rules.batch import Batch
from worker.rules.identity import secondary_of
from worker.rules.state import DEFAULT_LIMITS, Changes, Limits, Loaded
from worker.sql import accounts, definitions, events, ledger, user_rows, users, warnings


@dataclass
class Outcome:
    """What became of a batch's calls, for metrics and logs."""

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)  # (call type, outcome)
    warnings: Counter[str] = field(default_factory=Counter)  # by kind, recorded or not
    # Calls that cannot be applied, and why: they are neither applied nor claimed.
    refused: list[tuple[AnyCall, str]] = field(default_factory=list)

    def add(self, other: Outcome) -> None:
        self.calls.update(other.calls)
        self.warnings.update(other.warnings)
        self.refused += other.refused


async def apply_calls(conn: Conn, calls: list[AnyCall], limits: Limits = DEFAULT_LIMITS) -> Outcome:
    """Apply `calls` exactly once each, in one transaction."""
    outcome = Outcome()
    async with conn.transaction():
        calls = await _without_missing_workspaces(conn, calls, outcome)
        fresh = await _claim(conn, calls, outcome)
        fresh.sort(key=lambda c: c.version)
        batch = Batch(await _load(conn, fresh), limits)
        for call in fresh:
            outcome.calls[(call_type(call), batch.apply(call))] += 1
        changes = batch.changes()
        await _flush(conn, changes)
        found = _warnings(fresh, changes)
        # Last: the tallies' row locks are held only until the commit just after.
        await warnings.record(conn, found)
        outcome.warnings.update(w["kind"] for w in found)
    return outcome


def call_type(call: AnyCall) -> str:
    return type(call).__name__.lower()


def _warnings(calls: list[AnyCall], changes: Changes) -> list[dict[str, Any]]:
    """What the receiver mended in these calls, then what the rules found, as rows."""
    found = [(call, w) for call in calls for w in call.sextant.warnings] + changes.warnings
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
    fresh = await ledger.claim(conn, ((c.workspace_id, c.messageId) for c in calls))
    todo: list[AnyCall] = []
    for call in calls:
        key = (call.workspace_id, call.messageId)
        if key in fresh:
            fresh.discard(key)
            todo.append(call)
        else:
            outcome.calls[(call_type(call), "duplicate")] += 1
    return todo


async def _load(conn: Conn, calls: list[AnyCall]) -> Loaded:
    identity_keys = {k for c in calls for k in c.identities}
    tombstones, blocked = await ledger.identity_facts(conn, identity_keys)
    # An anonymous id of a deleted user leads back to that userId (`rules.identity`).
    owners = {
        (ws, "user_id", t.user_id)
        for (ws, id_field, _), t in tombstones.items()
        if id_field != "user_id" and t.user_id
    } - identity_keys
    if owners:
        more_tombstones, more_blocked = await ledger.identity_facts(conn, owners)
        tombstones |= more_tombstones
        blocked |= more_blocked
        identity_keys |= owners
    user_ids = sorted((w, i) for w, id_field, i in identity_keys if id_field == "user_id")
    # Anonymous ids and emails, as `rules.identity` keeps them (emails marked).
    anonymous_ids = sorted(
        (key[0], secondary) for key in identity_keys if (secondary := secondary_of(key))
    )
    loaded = Loaded(
        definitions=await definitions.load(conn, _scopes(calls)),
        tombstones=tombstones,
        blocked=blocked,
        blocking_connectors=await ledger.blocking_connectors(
            conn, {c.sextant.connector_id for c in calls if type(c) is Identify}
        ),
    )
    # Lock order: users, then accounts, each by (workspace, id).
    locked = {u.pk: u for u in await users.lock(conn, user_ids, anonymous_ids)}
    loaded.users = list(locked.values())
    loaded.anonymous_counts = await users.anonymous_id_counts(conn, loaded.users)
    for key, pk in (await users.anonymous_id_owners(conn, anonymous_ids)).items():
        if pk not in locked:  # mapped by another worker after we locked
            raise BatchConflict("an anonymous id changed owner during the batch")
        loaded.anonymous_owners[key] = locked[pk]
    group_ids = sorted({(c.workspace_id, g) for c in calls for g in accounts_named(c)})
    for account in await accounts.lock(conn, group_ids):
        loaded.accounts[(account.workspace_id, account.group_id)] = account
    loaded.account_tombstones = await accounts.tombstones(conn, group_ids)
    return loaded


def _scopes(calls: list[AnyCall]) -> set[tuple[int, str, str]]:
    """The attribute definitions the batch may need: (workspace, entity, event name)."""
    scopes: set[tuple[int, str, str]] = set()
    for call in calls:
        if type(call) is Identify:  # not `match`: class patterns take the slow isinstance path
            scopes.add((call.workspace_id, "user", ""))
        elif type(call) is Track:
            scopes.add((call.workspace_id, "user", ""))  # audience traits live on the user
            scopes.add((call.workspace_id, "event", call.event))
        if type(call) is Group or accounts_named(call):
            scopes.add((call.workspace_id, "account", ""))
    return scopes


async def _flush(conn: Conn, changes: Changes) -> None:
    await users.assign_ids(conn, changes.new_users)
    await users.save(conn, changes.users)
    if not await users.map_new_anonymous_ids(conn, changes.anonymous_first_owners):
        raise BatchConflict("another worker gave an anonymous id its first owner")
    await user_rows.merge(conn, changes.merges)
    await users.bump_anonymous_ids(conn, changes.anonymous_bumps)
    await accounts.delete(conn, changes.unused_accounts)
    await accounts.save(conn, changes.accounts)
    await accounts.end_members(conn, changes.endings)  # first: they decide which members stand
    await accounts.add_members(conn, changes.members)
    await events.insert_events(conn, changes.events)
    await events.insert_page_views(conn, changes.page_views)
    await events.save_definitions(conn, changes.event_seen)
    await definitions.add(conn, changes.new_definitions)
    await users.save_memberships(conn, changes.memberships)
    await accounts.save_audiences(conn, changes.account_memberships)
    await accounts.save_tombstones(conn, changes.account_tombstones)
    await accounts.forget_before(conn, changes.account_cuts)
    await accounts.remove(conn, changes.gone_accounts)
    await ledger.tombstone_anonymous_ids(conn, changes.gone, changes.cuts)
    await ledger.save_tombstones(conn, changes.tombstones)
    await user_rows.forget_before(conn, changes.cuts)
    await user_rows.delete(conn, [u for u, _ in changes.gone])
    await ledger.save_blocks(conn, changes.block, changes.unblock)
