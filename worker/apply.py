"""Apply a batch of calls to Postgres in one transaction (CONTRACT.md sections 7 and 8).

Three steps: load and lock every row the batch touches (one statement per table),
apply the calls in memory in call-time order, then write what changed (one statement
per table). Row locks are always taken in the same order, so batches running at the
same time in other workers wait for each other instead of deadlocking.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ingest.wire import identifier
from sextant.db import Conn
from sextant.errors import SextantError
from worker import accounts, definitions, events, ledger, users
from worker.calls import Alias, AnyCall, Delete, Group, Identify, Page, Screen, Track
from worker.definitions import Definitions
from worker.events import Event, PageView
from worker.ledger import IdentityKey
from worker.model import Account, Profile, User
from worker.traits import (
    AttributeType,
    account_columns,
    context_columns,
    convert,
    custom_account_traits,
    custom_user_traits,
    is_free_email,
    user_columns,
)
from worker.users import Membership

AUDIENCE_CLASSES = frozenset({"audience", "journey_step"})
AUDIENCE_EVENTS = {"Audience Entered": True, "Audience Exited": False}


class BatchConflict(SextantError):
    """Another worker changed what this batch read; the batch is retried from the start."""

    retriable = True


@dataclass
class Outcome:
    """What became of a batch's calls, for metrics and logs."""

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)  # (type, outcome)
    dropped_attributes: int = 0


async def apply_calls(conn: Conn, calls: list[AnyCall]) -> Outcome:
    """Apply `calls` exactly once each, in one transaction."""
    async with conn.transaction():
        return await _apply(conn, calls)


async def _apply(conn: Conn, calls: list[AnyCall]) -> Outcome:
    outcome = Outcome()
    fresh = await ledger.claim(conn, ((c.workspace_id, c.messageId) for c in calls))
    todo: list[AnyCall] = []
    for call in calls:
        key = (call.workspace_id, call.messageId)
        if key in fresh:
            fresh.discard(key)  # a messageId twice in one batch is applied once
            todo.append(call)
        else:
            outcome.calls[(_kind(call), "duplicate")] += 1
    todo.sort(key=lambda c: c.version)
    batch = await _Batch.load(conn, todo, outcome)
    for call in todo:
        outcome.calls[(_kind(call), batch.apply(call))] += 1
    await batch.flush(conn)
    return outcome


def _kind(call: AnyCall) -> str:
    return type(call).__name__.lower()


def _identities(call: AnyCall) -> list[IdentityKey]:
    ws = call.workspace_id
    keys: list[IdentityKey] = []
    if call.user_id:
        keys.append((ws, "user_id", call.user_id))
    if call.anonymous_id:
        keys.append((ws, "anonymous_id", call.anonymous_id))
    if isinstance(call, Alias) and (previous := identifier(call.previousId)):
        keys.append((ws, "anonymous_id", previous))
    return keys


@dataclass
class _Batch:
    """The rows a batch touches, in memory, and what it will write."""

    outcome: Outcome
    definitions: Definitions
    tombstones: dict[IdentityKey, str]
    blocked: dict[IdentityKey, str]
    blocking_connectors: set[int]
    by_user_id: dict[tuple[int, str], User] = field(default_factory=dict)
    by_anonymous_id: dict[tuple[int, str], User] = field(default_factory=dict)
    accounts: dict[tuple[int, str], Account] = field(default_factory=dict)
    owned_anonymous_ids: set[tuple[int, str]] = field(default_factory=set)
    new_users: list[User] = field(default_factory=list)
    loaded_users: list[User] = field(default_factory=list)
    mapped: dict[tuple[int, str], User] = field(default_factory=dict)
    merged: list[User] = field(default_factory=list)
    deleted: list[User] = field(default_factory=list)
    new_tombstones: dict[IdentityKey, str] = field(default_factory=dict)
    block: dict[IdentityKey, str] = field(default_factory=dict)
    unblock: set[IdentityKey] = field(default_factory=set)
    members: list[tuple[Account, User]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    page_views: list[PageView] = field(default_factory=list)
    event_seen: dict[tuple[int, str], tuple[datetime, datetime]] = field(default_factory=dict)
    new_definitions: dict[tuple[int, str, str, str], AttributeType] = field(default_factory=dict)
    memberships: dict[tuple[User, str], Membership] = field(default_factory=dict)

    # --- load ---------------------------------------------------------------------------

    @classmethod
    async def load(cls, conn: Conn, calls: list[AnyCall], outcome: Outcome) -> _Batch:
        identity_keys = {k for c in calls for k in _identities(c)}
        user_ids = sorted((w, i) for w, kind, i in identity_keys if kind == "user_id")
        anonymous_ids = sorted((w, i) for w, kind, i in identity_keys if kind == "anonymous_id")
        group_ids = sorted(
            {(c.workspace_id, str(identifier(c.groupId))) for c in calls if isinstance(c, Group)}
        )
        batch = cls(
            outcome=outcome,
            definitions=await definitions.load(conn, _scopes(calls)),
            tombstones=await ledger.tombstones(conn, identity_keys),
            blocked=await ledger.blocked(conn, identity_keys),
            blocking_connectors=await ledger.blocking_connectors(
                conn, {c.sextant.connector_id for c in calls if isinstance(c, Identify)}
            ),
        )
        # Lock order: users, then accounts, each by (workspace, id).
        loaded = {u.pk: u for u in await users.lock(conn, user_ids, anonymous_ids)}
        batch.loaded_users = list(loaded.values())
        for user in batch.loaded_users:
            if user.user_id is not None:
                batch.by_user_id[(user.workspace_id, user.user_id)] = user
        for key, pk in (await users.anonymous_id_owners(conn, anonymous_ids)).items():
            if pk not in loaded:  # mapped by another worker after we locked
                raise BatchConflict("an anonymous id changed owner during the batch")
            batch.by_anonymous_id[key] = loaded[pk]
            batch.owned_anonymous_ids.add(key)
        for account in await accounts.lock(conn, group_ids):
            batch.accounts[(account.workspace_id, account.group_id)] = account
        return batch

    # --- apply, in memory ---------------------------------------------------------------

    def apply(self, call: AnyCall) -> str:
        """Apply one call; returns its outcome (applied, deleted, blocked)."""
        identities = _identities(call)
        if any(self.tombstones.get(k, "") >= call.version for k in identities):
            return "deleted"  # older than a delete of this identity
        if isinstance(call, Identify) and self._blocks_free_email(call, identities):
            return "blocked"
        if any(k in self.blocked for k in identities):
            return "blocked"
        match call:
            case Identify():
                self._identify(call)
            case Track():
                self._track(call)
            case Page():  # and Screen, its subclass
                self._page(call)
            case Group():
                self._group(call)
            case Alias():
                self._alias(call)
            case Delete():
                self._delete(call)
        return "applied"

    def _blocks_free_email(self, call: Identify, identities: list[IdentityKey]) -> bool:
        """A blocking connector ignores free-email identities until a work email arrives."""
        if call.sextant.connector_id not in self.blocking_connectors:
            return False
        email = (call.traits or {}).get("email")
        if not isinstance(email, str) or not email:
            return False
        if is_free_email(email):
            for key in identities:
                self.blocked[key] = call.version
                self.block[key] = call.version
            return True
        for key in identities:
            if self.blocked.pop(key, None) is not None:
                self.block.pop(key, None)
                self.unblock.add(key)
        return False

    def _identify(self, call: Identify) -> None:
        user = self._user_for(call.workspace_id, call.user_id, call.anonymous_id)
        version, traits = call.version, call.traits or {}
        for column, value in {**user_columns(traits), **context_columns(call.context)}.items():
            user.put(column, value, version)
        personas = call.context.personas if call.context else None
        audience = (
            personas.computation_key
            if personas and personas.computation_class in AUDIENCE_CLASSES
            else None
        )
        for name, value in custom_user_traits(traits).items():
            first_type: AttributeType = "boolean" if name == audience else "string"
            ok, typed = self._typed(call.workspace_id, "user", "", name, value, first_type)
            if ok:
                user.put_trait(name, typed, version)
                if name == audience and isinstance(typed, bool):
                    self._membership(user, name, typed, call)

    def _track(self, call: Track) -> None:
        ws = call.workspace_id
        user = self._user_for(ws, call.user_id, call.anonymous_id)
        properties = {}
        for name, value in (call.properties or {}).items():
            if value is None:
                continue
            ok, typed = self._typed(ws, "event", call.event, name, value, "string")
            if ok:
                properties[name] = typed
        moment = call.occurred_at
        self.events.append(
            Event(ws, call.messageId, user, call.event, properties, moment, call.receivedAt)
        )
        first, last = self.event_seen.get((ws, call.event), (moment, moment))
        self.event_seen[(ws, call.event)] = (min(first, moment), max(last, moment))
        user.seen(moment)
        if call.event in AUDIENCE_EVENTS:
            self._audience_event(user, call)

    def _audience_event(self, user: User, call: Track) -> None:
        personas = call.context.personas if call.context else None
        key = (call.properties or {}).get("audience_key") or (
            personas.computation_key if personas else None
        )
        if not isinstance(key, str) or not key:
            return
        member = AUDIENCE_EVENTS[call.event]
        ok, typed = self._typed(call.workspace_id, "user", "", key, member, "boolean")
        if ok:
            user.put_trait(key, typed, call.version)
        self._membership(user, key, member, call)

    def _page(self, call: Page) -> None:
        user = self._user_for(call.workspace_id, call.user_id, call.anonymous_id)
        properties = call.properties or {}
        page = call.context.page if call.context and isinstance(call.context.page, dict) else {}

        def text(name: str) -> str | None:
            value = properties.get(name, page.get(name))
            return value if isinstance(value, str) else None

        self.page_views.append(
            PageView(
                workspace_id=call.workspace_id,
                message_id=call.messageId,
                user=user,
                kind="screen" if isinstance(call, Screen) else "page",
                name=call.name,
                category=call.category,
                url=text("url"),
                path=text("path"),
                title=text("title"),
                referrer=text("referrer"),
                properties=properties,
                occurred_at=call.occurred_at,
                received_at=call.receivedAt,
            )
        )
        user.page_views += 1
        user.changed = True
        user.seen(call.occurred_at)

    def _group(self, call: Group) -> None:
        ws = call.workspace_id
        user = self._user_for(ws, call.user_id, call.anonymous_id)
        account = self._account_for(ws, str(identifier(call.groupId)))
        version, traits = call.version, call.traits or {}
        for column, value in account_columns(traits).items():
            account.put(column, value, version)
        for name, value in custom_account_traits(traits).items():
            ok, typed = self._typed(ws, "account", "", name, value, "string")
            if ok:
                account.put_trait(name, typed, version)
        self.members.append((account, user))

    def _alias(self, call: Alias) -> None:
        ws = call.workspace_id
        self._user_for(ws, call.user_id, identifier(call.previousId))
        if call.anonymous_id:
            self._user_for(ws, call.user_id, call.anonymous_id)

    def _delete(self, call: Delete) -> None:
        ws, version = call.workspace_id, call.version
        user_id = call.user_id
        assert user_id is not None  # the receiver refuses a delete without one
        self.new_tombstones[(ws, "user_id", user_id)] = version
        self.tombstones[(ws, "user_id", user_id)] = version
        user = self.by_user_id.pop((ws, user_id), None)
        if user is None:
            return
        user.deleted_version = version
        for key, owner in list(self.by_anonymous_id.items()):
            if owner is user:
                del self.by_anonymous_id[key]
                self.new_tombstones[(ws, "anonymous_id", key[1])] = version
                self.tombstones[(ws, "anonymous_id", key[1])] = version
        if user.pk is not None:
            self.deleted.append(user)

    # --- identity -----------------------------------------------------------------------

    def _user_for(self, ws: int, user_id: str | None, anonymous_id: str | None) -> User:
        """The call's user: found by userId, else by anonymousId, else created.

        An anonymous id is attached to the userId's user; an anonymous user without a
        userId is merged into it. Users with different userIds are never merged.
        """
        user = self.by_user_id.get((ws, user_id)) if user_id else None
        anonymous = self.by_anonymous_id.get((ws, anonymous_id)) if anonymous_id else None
        if user_id is None:
            assert anonymous_id is not None  # the receiver refuses calls with neither
            if anonymous is None:
                anonymous = self._new_user(ws, None)
                self._map(ws, anonymous_id, anonymous)
            return anonymous
        if user is None:
            if anonymous is not None and anonymous.user_id is None:
                user = anonymous  # attach: the anonymous user gets its userId
                user.user_id = user_id
                user.changed = True
            else:
                user = self._new_user(ws, user_id)
            self.by_user_id[(ws, user_id)] = user
        if anonymous_id is not None:
            if anonymous is None:
                self._map(ws, anonymous_id, user)
            elif anonymous is not user and anonymous.user_id is None:
                self._merge(anonymous, user)
        return user

    def _new_user(self, ws: int, user_id: str | None) -> User:
        user = User(workspace_id=ws, user_id=user_id, new=True, changed=True)
        self.new_users.append(user)
        if user_id is not None:
            self.by_user_id[(ws, user_id)] = user
        return user

    def _map(self, ws: int, anonymous_id: str, user: User) -> None:
        self.by_anonymous_id[(ws, anonymous_id)] = user
        self.mapped[(ws, anonymous_id)] = user

    def _merge(self, loser: User, winner: User) -> None:
        winner.merge_from(loser)
        for key, owner in list(self.by_anonymous_id.items()):
            if owner is loser:
                self._map(key[0], key[1], winner)
        if loser.pk is not None:
            self.merged.append(loser)
        for (user, audience), membership in list(self.memberships.items()):
            if user is loser:
                del self.memberships[(user, audience)]
                self._keep_membership(winner, audience, membership)

    def _account_for(self, ws: int, group_id: str) -> Account:
        account = self.accounts.get((ws, group_id))
        if account is None:
            account = Account(workspace_id=ws, group_id=group_id, new=True, changed=True)
            self.accounts[(ws, group_id)] = account
        return account

    # --- typed attributes and audiences -------------------------------------------------

    def _typed(
        self, ws: int, entity: str, event: str, name: str, value: Any, first_type: AttributeType
    ) -> tuple[bool, Any]:
        """Convert to the defined type; a name seen for the first time is defined here."""
        defined = self.definitions.setdefault((ws, entity, event), {})
        kind = defined.get(name)
        if kind is None:
            kind = defined[name] = first_type
            self.new_definitions[(ws, entity, event, name)] = kind
        ok, typed = convert(value, kind)
        if not ok:
            self.outcome.dropped_attributes += 1
        return ok, typed

    def _membership(self, user: User, audience: str, member: bool, call: AnyCall) -> None:
        personas = call.context.personas if call.context else None
        self._keep_membership(
            user,
            audience,
            Membership(
                user=user,
                audience_key=audience,
                member=member,
                computation_class=personas.computation_class if personas else None,
                computation_id=personas.computation_id if personas else None,
                space_id=personas.space_id if personas else None,
                version=call.version,
                updated_at=call.occurred_at,
            ),
        )

    def _keep_membership(self, user: User, audience: str, membership: Membership) -> None:
        current = self.memberships.get((user, audience))
        if current is None or membership.version > current.version:
            self.memberships[(user, audience)] = membership

    # --- flush --------------------------------------------------------------------------

    async def flush(self, conn: Conn) -> None:
        live_new = [u for u in self.new_users if _alive(u) and u.merged_into is None]
        await users.assign_ids(conn, live_new)
        changed = [
            u for u in self.loaded_users if _alive(u) and u.merged_into is None and u.changed
        ]
        await users.save(conn, changed + live_new)
        first_owners = [
            (ws, aid, _pk(user.final()))
            for (ws, aid), user in sorted(self.mapped.items(), key=lambda kv: kv[0])
            if (ws, aid) not in self.owned_anonymous_ids and _alive(user.final())
        ]
        if not await users.map_new_anonymous_ids(conn, first_owners):
            raise BatchConflict("another worker gave an anonymous id its first owner")
        await users.merge(
            conn,
            [(u.workspace_id, _pk(u), _pk(u.final())) for u in self.merged if _alive(u.final())],
        )
        await self._flush_accounts(conn)
        await events.insert_events(conn, [e for e in self.events if _alive(e.user.final())])
        await events.insert_page_views(conn, [v for v in self.page_views if _alive(v.user.final())])
        await events.save_definitions(conn, self.event_seen)
        await definitions.add(conn, self.new_definitions)
        await users.save_memberships(
            conn, [m for m in self.memberships.values() if _alive(m.user.final())]
        )
        await self._flush_deletes(conn)
        await ledger.save_blocks(conn, self.block, self.unblock)

    async def _flush_accounts(self, conn: Conn) -> None:
        new = [a for a in self.accounts.values() if a.new]
        await accounts.assign_ids(conn, new)
        await accounts.save(conn, [a for a in self.accounts.values() if a.changed])
        await accounts.add_members(
            conn,
            [
                (a.workspace_id, _pk(a), _pk(u.final()))
                for a, u in self.members
                if _alive(u.final())
            ],
        )

    async def _flush_deletes(self, conn: Conn) -> None:
        # A user merged into one that a later call deleted goes with it.
        doomed = self.deleted + [u for u in self.merged if not _alive(u.final())]
        rows = [(u.workspace_id, _pk(u), u.final().deleted_version or "") for u in doomed]
        await ledger.save_tombstones(conn, self.new_tombstones, rows)
        await users.delete(conn, [(ws, pk) for ws, pk, _ in rows])


def _pk(row: Profile) -> int:
    assert row.pk is not None, "ids are assigned before rows are written"
    return row.pk


def _alive(user: User) -> bool:
    return user.deleted_version is None


def _scopes(calls: list[AnyCall]) -> set[tuple[int, str, str]]:
    scopes: set[tuple[int, str, str]] = set()
    for call in calls:
        ws = call.workspace_id
        match call:
            case Identify() | Track():
                scopes.add((ws, "user", ""))  # audience traits live on the user
                if isinstance(call, Track):
                    scopes.add((ws, "event", call.event))
            case Group():
                scopes.add((ws, "account", ""))
    return scopes
