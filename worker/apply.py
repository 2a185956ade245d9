"""Calls applied to the rows they touch: load and lock, apply in call-time order, flush.

Load reads and locks every row the calls touch (one statement per table); row locks are
always taken in the same order, so batches running at the same time in other workers
wait for each other instead of deadlocking. The pure rules (`worker.rules`) then apply
the calls in memory, and flush writes what changed (one statement per table).
"""

from __future__ import annotations

from sextant.calls import AnyCall, Group, Identify, IdentityKey, Track
from sextant.db import Conn
from sextant.errors import BatchConflict
from worker.rules.accounts import named_groups as accounts_named
from worker.rules.batch import Batch
from worker.rules.identity import split_identities
from worker.rules.state import Changes, Limits, Loaded
from worker.sql import accounts, definitions, events, journal, ledger, user_rows, users

Fates = dict[tuple[int, str], str]  # (workspace, messageId) -> applied, deleted, blocked


async def apply_in_order(
    conn: Conn, calls: list[AnyCall], limits: Limits, fates: Fates, replaying: bool = False
) -> Changes:
    """Load what the calls touch, apply them in call-time order, and write the changes;
    `fates` gets what became of each call."""
    calls = sorted(calls, key=lambda c: c.version)
    batch = Batch(await _load(conn, calls, replaying), limits, replaying)
    for call in calls:
        fates[(call.workspace_id, call.messageId)] = batch.apply(call)
    changes = batch.changes()
    await _flush(conn, changes)
    return changes


def call_type(call: AnyCall) -> str:
    return type(call).__name__.lower()


async def _load(conn: Conn, calls: list[AnyCall], replaying: bool = False) -> Loaded:
    identity_keys = {k for c in calls for k in c.identities}
    tombstones, statuses = await ledger.identity_facts(conn, identity_keys)
    # An anonymous id of a deleted user leads back to that userId (`rules.identity`).
    owners = {
        (ws, "user_id", t.user_id)
        for (ws, id_field, _), t in tombstones.items()
        if id_field != "user_id" and t.user_id
    } - identity_keys
    if owners:
        more_tombstones, more_statuses = await ledger.identity_facts(conn, owners)
        tombstones |= more_tombstones
        statuses |= more_statuses
        identity_keys |= owners
    # Anonymous ids and emails as `rules.identity` keeps them (emails marked).
    user_ids, anonymous_ids = split_identities(identity_keys)
    loaded = Loaded(
        definitions=await definitions.load(conn, _scopes(calls)),
        tombstones=tombstones,
        statuses=statuses,
        blocking_connectors=await ledger.blocking_connectors(
            conn, {c.sextant.connector_id for c in calls if type(c) is Identify}
        ),
    )
    if loaded.blocking_connectors and not replaying:  # a replay is in order: none late
        loaded.newest_named = await _newest_named(conn, calls, loaded.blocking_connectors)
    # Lock order: users, then accounts, each by (workspace, id).
    locked = {u.pk: u for u in await users.lock(conn, user_ids, anonymous_ids)}
    loaded.users = list(locked.values())
    loaded.anonymous_counts = await users.anonymous_id_counts(conn, loaded.users)
    for key, (pk, version) in (await users.anonymous_id_owners(conn, anonymous_ids)).items():
        if pk not in locked:  # mapped by another worker after we locked
            raise BatchConflict("an anonymous id changed owner during the batch")
        loaded.anonymous_owners[key] = locked[pk]
        loaded.named_with_owner[key] = version
    group_ids = sorted({(c.workspace_id, g) for c in calls for g in accounts_named(c)})
    for account in await accounts.lock(conn, group_ids):
        loaded.accounts[(account.workspace_id, account.group_id)] = account
    loaded.account_tombstones = await accounts.tombstones(conn, group_ids)
    return loaded


async def _newest_named(
    conn: Conn, calls: list[AnyCall], blocking_connectors: set[int]
) -> dict[IdentityKey, str]:
    """For identities an identify may block or let in, the newest call of another batch
    that named them, to whichever user it went (see `rules.late`)."""
    keys = {
        k
        for c in calls
        if type(c) is Identify and c.sextant.connector_id in blocking_connectors
        for k in c.identities
    }
    return await journal.newest_naming(conn, keys, {c.messageId for c in calls})


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
    await user_rows.forget_before(conn, [(u, t.version) for u, t in changes.cuts])
    await user_rows.delete(conn, [u for u, _ in changes.gone])
    await ledger.save_statuses(conn, changes.statuses)
