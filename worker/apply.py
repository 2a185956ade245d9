"""Apply a batch of calls to Postgres in one transaction (CONTRACT.md sections 7 and 8).

Three steps: load and lock every row the batch touches (one statement per table),
apply the calls in memory in call-time order, then write what changed (one statement
per table). Row locks are always taken in the same order, so batches running at the
same time in other workers wait for each other instead of deadlocking.

Order does not matter to the result. Fields are last-writer-wins by call version;
counters count messageIds; memberships and definitions are sets. A delete is a
tombstone at its version: calls older than it are ignored when they come later, and
what they wrote is removed when they came first, so the rows end the same either way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ingest.wire import identifier
from sextant.db import Conn
from sextant.errors import SextantError
from worker import accounts, definitions, events, ledger, users
from worker.calls import Alias, AnyCall, Delete, Group, Identify, IdentityKey, Page, Screen, Track
from worker.definitions import Definitions
from worker.events import Event, PageView
from worker.ledger import Tombstone
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


@dataclass
class _Batch:
    """The rows a batch touches, in memory, and what it will write."""

    outcome: Outcome
    definitions: Definitions
    tombstones: dict[IdentityKey, Tombstone]
    blocked: dict[IdentityKey, str]
    blocking_connectors: set[int]
    by_user_id: dict[tuple[int, str], User] = field(default_factory=dict)
    by_anonymous_id: dict[tuple[int, str], User] = field(default_factory=dict)
    owned_anonymous_ids: set[tuple[int, str]] = field(default_factory=set)
    anonymous_versions: dict[tuple[int, str], str] = field(default_factory=dict)
    accounts: dict[tuple[int, str], Account] = field(default_factory=dict)
    loaded_users: list[User] = field(default_factory=list)
    new_users: list[User] = field(default_factory=list)
    merged: list[User] = field(default_factory=list)
    new_tombstones: dict[IdentityKey, Tombstone] = field(default_factory=dict)
    block: dict[IdentityKey, str] = field(default_factory=dict)
    unblock: set[IdentityKey] = field(default_factory=set)
    members: list[tuple[Account, User, str]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    page_views: list[PageView] = field(default_factory=list)
    event_seen: dict[tuple[int, str], tuple[datetime, datetime]] = field(default_factory=dict)
    new_definitions: dict[tuple[int, str, str, str], AttributeType] = field(default_factory=dict)
    memberships: dict[tuple[User, str], Membership] = field(default_factory=dict)

    # --- load ---------------------------------------------------------------------------

    @classmethod
    async def load(cls, conn: Conn, calls: list[AnyCall], outcome: Outcome) -> _Batch:
        identity_keys = {k for c in calls for k in c.identities}
        tombstones, blocked = await ledger.identity_facts(conn, identity_keys)
        # An anonymous id of a deleted user leads back to that userId (see `_user_for`).
        owners = {
            (ws, "user_id", t.user_id)
            for (ws, kind, _), t in tombstones.items()
            if kind == "anonymous_id" and t.user_id
        } - identity_keys
        if owners:
            more_tombstones, more_blocked = await ledger.identity_facts(conn, owners)
            tombstones |= more_tombstones
            blocked |= more_blocked
            identity_keys |= owners
        user_ids = sorted((w, i) for w, kind, i in identity_keys if kind == "user_id")
        anonymous_ids = sorted((w, i) for w, kind, i in identity_keys if kind == "anonymous_id")
        group_ids = sorted(
            {(c.workspace_id, str(identifier(c.groupId))) for c in calls if type(c) is Group}
        )
        batch = cls(
            outcome=outcome,
            definitions=await definitions.load(conn, _scopes(calls)),
            tombstones=tombstones,
            blocked=blocked,
            blocking_connectors=await ledger.blocking_connectors(
                conn, {c.sextant.connector_id for c in calls if type(c) is Identify}
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
        identities = call.identities
        if any(
            (t := self.tombstones.get(k)) is not None and t.version >= call.version
            for k in identities
        ):
            # Older than a delete. Definitions and accounts are the workspace's, not the
            # user's: they take the call either way, so they do not depend on order.
            self._workspace_facts(call)
            self._remember_pairing(call)
            return "deleted"
        if type(call) is Identify and self._blocks_free_email(call, identities):
            return "blocked"
        if any(k in self.blocked for k in identities):
            return "blocked"
        _APPLY[type(call)](self, call)
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
        user = self._user_for(call, call.user_id, call.anonymous_id)
        version = call.version
        traits = call.traits or {}
        for column, value in {**user_columns(traits), **context_columns(call.context)}.items():
            user.put(column, value, version)
        audience = _audience_key(call)
        for name, ok, typed in self._typed_user_traits(call):
            if ok:
                user.put_trait(name, typed, version)
                if name == audience and isinstance(typed, bool):
                    self._membership(user, name, typed, call)

    def _typed_user_traits(self, call: Identify) -> list[tuple[str, bool, Any]]:
        """Custom traits converted to their types; Engage audiences are booleans."""
        audience = _audience_key(call)
        typed_traits = []
        for name, value in custom_user_traits(call.traits or {}).items():
            first_type: AttributeType = "boolean" if name == audience else "string"
            ok, typed = self._typed(call.workspace_id, "user", "", name, value, first_type)
            typed_traits.append((name, ok, typed))
        return typed_traits

    def _track(self, call: Track) -> None:
        ws = call.workspace_id
        user = self._user_for(call, call.user_id, call.anonymous_id)
        moment = call.occurred_at
        self.events.append(
            Event(
                workspace_id=ws,
                message_id=call.messageId,
                version=call.version,
                user=user,
                name=call.event,
                properties=self._typed_properties(call),
                occurred_at=moment,
                received_at=call.receivedAt,
            )
        )
        self._seen_event(call)
        user.seen(moment)
        if call.event in AUDIENCE_EVENTS:
            self._audience_event(user, call)

    def _typed_properties(self, call: Track) -> dict[str, Any]:
        properties = {}
        for name, value in (call.properties or {}).items():
            if value is None:
                continue
            ok, typed = self._typed(call.workspace_id, "event", call.event, name, value, "string")
            if ok:
                properties[name] = typed
        return properties

    def _seen_event(self, call: Track) -> None:
        key, moment = (call.workspace_id, call.event), call.occurred_at
        first, last = self.event_seen.get(key, (moment, moment))
        self.event_seen[key] = (min(first, moment), max(last, moment))

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
        user = self._user_for(call, call.user_id, call.anonymous_id)
        properties = call.properties or {}
        page = call.context.page if call.context and isinstance(call.context.page, dict) else {}

        def text(name: str) -> str | None:
            value = properties.get(name, page.get(name))
            return value if isinstance(value, str) else None

        self.page_views.append(
            PageView(
                workspace_id=call.workspace_id,
                message_id=call.messageId,
                version=call.version,
                user=user,
                kind="screen" if type(call) is Screen else "page",
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
        user = self._user_for(call, call.user_id, call.anonymous_id)
        self.members.append((self._update_account(call), user, call.version))

    def _update_account(self, call: Group) -> Account:
        account = self._account_for(call.workspace_id, str(identifier(call.groupId)))
        version = call.version
        for column, value in account_columns(call.traits or {}).items():
            account.put(column, value, version)
        for name, value in custom_account_traits(call.traits or {}).items():
            ok, typed = self._typed(call.workspace_id, "account", "", name, value, "string")
            if ok:
                account.put_trait(name, typed, version)
        return account

    def _alias(self, call: Alias) -> None:
        self._user_for(call, call.user_id, identifier(call.previousId))
        if call.anonymous_id:
            self._user_for(call, call.user_id, call.anonymous_id)

    def _delete(self, call: Delete) -> None:
        """A tombstone; what it removes is worked out at flush, whatever came before."""
        user_id = call.user_id
        assert user_id is not None  # the receiver refuses a delete without one
        key = (call.workspace_id, "user_id", user_id)
        self.tombstones[key] = self.new_tombstones[key] = Tombstone(call.version, user_id)

    def _remember_pairing(self, call: AnyCall) -> None:
        """An ignored call still says whose its anonymous ids are.

        Newer calls with only such an anonymous id then find that user, as they would
        have had the ignored call come first.
        """
        ws, user_id = call.workspace_id, call.user_id
        deleted = self.tombstones.get((ws, "user_id", user_id or ""))
        if user_id is None or deleted is None:
            return
        for key in call.identities:
            if key[1] != "anonymous_id":
                continue
            if (ws, key[2]) in self.by_anonymous_id:
                # An anonymous user that newer calls made joins the userId as usual.
                self._resolve(ws, user_id, key[2])
            current = self.tombstones.get(key)
            if current is None or current.version < deleted.version:
                self.tombstones[key] = self.new_tombstones[key] = Tombstone(
                    deleted.version, user_id
                )

    def _workspace_facts(self, call: AnyCall) -> None:
        """What a call tells about the workspace (definitions, accounts), and nothing more."""
        match call:
            case Identify():
                self._typed_user_traits(call)
            case Track():
                self._typed_properties(call)
                self._seen_event(call)
            case Group():
                self._update_account(call)

    # --- identity -----------------------------------------------------------------------

    def _user_for(self, call: AnyCall, user_id: str | None, anonymous_id: str | None) -> User:
        """The call's user: found by userId, else by anonymousId, else created.

        An anonymous id is attached to the userId's user; an anonymous user without a
        userId is merged into it. Users with different userIds are never merged.
        """
        ws = call.workspace_id
        if user_id is None and anonymous_id is not None:
            user_id = self._deleted_owner(ws, anonymous_id)
        user = self._resolve(ws, user_id, anonymous_id)
        user.touch(call.version)
        if anonymous_id is not None and self.by_anonymous_id.get((ws, anonymous_id)) is user:
            key = (ws, anonymous_id)
            self.anonymous_versions[key] = max(call.version, self.anonymous_versions.get(key, ""))
        return user

    def _deleted_owner(self, ws: int, anonymous_id: str) -> str | None:
        """The userId an unowned anonymous id belonged to before a delete, if any.

        A call newer than the delete finds that user again, as it would have had it
        arrived before the delete.
        """
        if (ws, anonymous_id) in self.by_anonymous_id:
            return None
        tombstone = self.tombstones.get((ws, "anonymous_id", anonymous_id))
        return tombstone.user_id if tombstone else None

    def _resolve(self, ws: int, user_id: str | None, anonymous_id: str | None) -> User:
        user = self.by_user_id.get((ws, user_id)) if user_id else None
        anonymous = self.by_anonymous_id.get((ws, anonymous_id)) if anonymous_id else None
        if user_id is None:
            assert anonymous_id is not None  # the receiver refuses calls with neither
            if anonymous is None:
                anonymous = self._new_user(ws, None)
                self.by_anonymous_id[(ws, anonymous_id)] = anonymous
            return anonymous
        if user is None:
            if anonymous is not None and anonymous.user_id is None:
                user = anonymous  # attach: the anonymous user gets its userId
                user.user_id = user_id
                user.changed = user.fields_changed = True
            else:
                user = self._new_user(ws, user_id)
            self.by_user_id[(ws, user_id)] = user
        if anonymous_id is not None:
            if anonymous is None:
                self.by_anonymous_id[(ws, anonymous_id)] = user
            elif anonymous is not user and anonymous.user_id is None:
                self._merge(anonymous, user)
        return user

    def _new_user(self, ws: int, user_id: str | None) -> User:
        user = User(workspace_id=ws, user_id=user_id, new=True, changed=True)
        self.new_users.append(user)
        return user

    def _merge(self, loser: User, winner: User) -> None:
        winner.merge_from(loser)
        for key, owner in list(self.by_anonymous_id.items()):
            if owner is loser:
                self.by_anonymous_id[key] = winner
        if loser.pk is not None:
            self.merged.append(loser)
        for (user, audience), membership in list(self.memberships.items()):
            if user is loser:
                del self.memberships[(user, audience)]
                self._keep_membership(winner, audience, membership)

    def _account_for(self, ws: int, group_id: str) -> Account:
        """The group's account: `load` created and locked every group of the batch."""
        account = self.accounts[(ws, group_id)]
        account.used = True
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
        survivors, cuts, doomed = self._apply_tombstones()
        live_new = [u for u in self.new_users if u.merged_into is None and u not in doomed]
        await users.assign_ids(conn, live_new)
        await users.save(conn, [u for u in survivors if u.changed and not u.new] + live_new)
        await self._flush_anonymous_ids(conn, doomed)

        def keeps(user: User, version: str) -> bool:
            final = user.final()
            return final not in doomed and version >= cuts.get(final, "")

        await self._flush_accounts(conn, keeps)
        await events.insert_events(conn, [e for e in self.events if keeps(e.user, e.version)])
        await events.insert_page_views(
            conn, [v for v in self.page_views if keeps(v.user, v.version)]
        )
        await events.save_definitions(conn, self.event_seen)
        await definitions.add(conn, self.new_definitions)
        await users.save_memberships(
            conn, [m for m in self.memberships.values() if keeps(m.user, m.version)]
        )
        await self._flush_deletes(conn, cuts, doomed)
        await ledger.save_blocks(conn, self.block, self.unblock)

    def _apply_tombstones(self) -> tuple[list[User], dict[User, str], dict[User, Tombstone]]:
        """Split the batch's users into survivors and the doomed.

        A user whose userId has a tombstone keeps only what is newer than it (`cuts`),
        and goes altogether when nothing newer touched it (`doomed`).
        """
        finals = [u for u in self.loaded_users + self.new_users if u.merged_into is None]
        survivors, cuts, doomed = [], {}, {}
        for user in finals:
            key = (user.workspace_id, "user_id", user.user_id or "")
            tombstone = self.tombstones.get(key) if user.user_id else None
            if tombstone is None:
                survivors.append(user)
            elif user.touched < tombstone.version:
                doomed[user] = tombstone
            else:
                user.forget_before(tombstone.version)
                cuts[user] = tombstone.version
                survivors.append(user)
        for (ws, anonymous_id), owner in self.by_anonymous_id.items():
            if (tombstone := doomed.get(owner.final())) is not None:
                key = (ws, "anonymous_id", anonymous_id)
                self.new_tombstones[key] = Tombstone(tombstone.version, tombstone.user_id)
        return survivors, cuts, doomed

    async def _flush_anonymous_ids(self, conn: Conn, doomed: dict[User, Tombstone]) -> None:
        first_owners, bumps = [], []
        for key, version in sorted(self.anonymous_versions.items()):
            owner = self.by_anonymous_id[key].final()
            if owner in doomed:
                continue
            if key in self.owned_anonymous_ids:
                bumps.append((*key, version))
            else:
                first_owners.append((*key, _pk(owner), version))
        if not await users.map_new_anonymous_ids(conn, first_owners):
            raise BatchConflict("another worker gave an anonymous id its first owner")
        await users.merge(
            conn,
            [
                (u.workspace_id, _pk(u), _pk(u.final()))
                for u in self.merged
                if u.final() not in doomed
            ],
        )
        await users.bump_anonymous_ids(conn, bumps)

    async def _flush_accounts(self, conn: Conn, keeps: Any) -> None:
        await accounts.delete(
            conn, [a for a in self.accounts.values() if a.inserted and not a.used]
        )
        await accounts.save(conn, [a for a in self.accounts.values() if a.changed])
        await accounts.add_members(
            conn,
            [
                (a.workspace_id, _pk(a), _pk(u.final()), version)
                for a, u, version in self.members
                if keeps(u, version)
            ],
        )

    async def _flush_deletes(
        self, conn: Conn, cuts: dict[User, str], doomed: dict[User, Tombstone]
    ) -> None:
        # Users merged into a doomed one go with it.
        gone = [(u, t) for u, t in doomed.items() if u.pk is not None] + [
            (u, doomed[u.final()]) for u in self.merged if u.final() in doomed
        ]
        marked = [(u.workspace_id, _pk(u), t.version, t.user_id or "") for u, t in gone] + [
            (u.workspace_id, _pk(u), version, u.user_id or "") for u, version in cuts.items()
        ]
        await ledger.tombstone_anonymous_ids(conn, marked)
        await ledger.save_tombstones(conn, self.new_tombstones)
        await users.forget_before(
            conn, [(u.workspace_id, _pk(u), version) for u, version in cuts.items()]
        )
        await users.delete(conn, [(u.workspace_id, _pk(u)) for u, _ in gone])


# Dispatch on the exact type: `isinstance` on Struct classes goes the slow ABC way.
_APPLY: dict[type[Any], Callable[[_Batch, Any], None]] = {
    Identify: _Batch._identify,
    Track: _Batch._track,
    Page: _Batch._page,
    Screen: _Batch._page,
    Group: _Batch._group,
    Alias: _Batch._alias,
    Delete: _Batch._delete,
}


def _audience_key(call: Identify) -> str | None:
    personas = call.context.personas if call.context else None
    if personas and personas.computation_class in AUDIENCE_CLASSES:
        return personas.computation_key
    return None


def _pk(row: Profile) -> int:
    assert row.pk is not None, "ids are assigned before rows are written"
    return row.pk


def _scopes(calls: list[AnyCall]) -> set[tuple[int, str, str]]:
    scopes: set[tuple[int, str, str]] = set()
    for call in calls:
        kind = type(call)  # not `match`: class patterns take the slow isinstance path
        if kind is Identify or kind is Track:
            scopes.add((call.workspace_id, "user", ""))  # audience traits live on the user
            if type(call) is Track:  # narrows `call` for the type checker
                scopes.add((call.workspace_id, "event", call.event))
        elif kind is Group:
            scopes.add((call.workspace_id, "account", ""))
    return scopes
