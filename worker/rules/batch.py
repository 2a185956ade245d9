"""A batch of calls applied in memory, in call-time order, to the rows it loaded; then the
changes to write. Pure: no I/O, so every rule is tested without services.

Order does not matter to the result. Fields are last-writer-wins by call version;
counters count messageIds; memberships and definitions are sets. A delete is a
tombstone at its version: calls older than it are ignored when they come later, and
what they wrote is removed when they came first, so the rows end the same either way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sextant.calls import (
    Alias,
    AnyCall,
    Delete,
    Group,
    Identify,
    IdentityKey,
    IngestionWarning,
    Page,
    Screen,
    Track,
    identifier,
)
from worker.rules import accounts, engage, late
from worker.rules.accounts import AccountBook
from worker.rules.attributes import AttributeType, AttributeTypes, Entity
from worker.rules.free_email import FREE_EMAIL_BLOCKED, FreeEmailBlocks
from worker.rules.identity import Identities
from worker.rules.mapping import (
    context_columns,
    custom_user_traits,
    first_type_of,
    trait_name,
    user_columns,
)
from worker.rules.records import (
    Event,
    Membership,
    PageView,
    Tombstone,
    User,
)
from worker.rules.state import DEFAULT_LIMITS, Changes, EventSeen, Limits, Loaded
from worker.rules.tombstones import (
    Verdicts,
    is_older_than_a_delete,
    is_older_than_its_owners_delete,
    judge,
    remember_pairing,
)


class Batch:
    """The calls of one batch applied in memory, one at a time, in call-time order."""

    def __init__(
        self, loaded: Loaded, limits: Limits = DEFAULT_LIMITS, replaying: bool = False
    ) -> None:
        # Replaying: the calls are a user's whole history in call-time order, none late.
        self.replaying = replaying
        self.rebuild: set[IdentityKey] = set()
        self.tombstones = loaded.tombstones
        self.newest_named = loaded.newest_named
        self.new_tombstones: dict[IdentityKey, Tombstone] = {}
        self.identities = Identities(
            loaded.users,
            loaded.anonymous_owners,
            self.tombstones,
            loaded.anonymous_counts,
            limits.max_anonymous_ids_per_user,
            loaded.named_with_owner,
        )
        self.limits = limits
        self.blocks = FreeEmailBlocks(loaded.statuses, loaded.blocking_connectors)
        self.attributes = AttributeTypes(loaded.definitions, limits.max_attributes_per_entity)
        self.accounts = AccountBook(loaded.accounts, loaded.account_tombstones, self._typed)
        self.events: list[Event] = []
        self.page_views: list[PageView] = []
        self.event_seen: EventSeen = {}
        self.memberships: list[Membership] = []  # audiences of users
        self.warnings: list[tuple[AnyCall, IngestionWarning]] = []

    def apply(self, call: AnyCall) -> str:
        """Apply one call; returns what became of it: applied, deleted or blocked."""
        if not self.replaying:
            self._rebuild_if_late(call)
        # A delete always applies: each removes what it removes, whatever the other did.
        if type(call) is not Delete and (
            is_older_than_a_delete(call, self.tombstones)
            or is_older_than_its_owners_delete(call, self.identities, self.tombstones)
        ):
            # Definitions and accounts are the workspace's, not the user's: they take the
            # call either way, so they do not depend on order.
            self._workspace_facts(call)
            if not self.replaying and late.pairs_an_owned_id(call, self.identities):
                self.rebuild.update(call.identities)
            remember_pairing(call, self.identities, self.tombstones, self.new_tombstones)
            self._take_identity_findings(call)
            return "deleted"
        blocked_now = type(call) is Identify and self.blocks.blocks_identify(call)
        # A delete is a privacy request: no status stands in its way.
        if type(call) is not Delete and (blocked_now or self.blocks.is_blocked(call)):
            self._workspace_facts(call)  # as for a deleted user, whatever its user's fate
            self.warnings.append((call, FREE_EMAIL_BLOCKED))
            return "blocked"
        _APPLY[type(call)](self, call)
        return "applied"

    def _rebuild_if_late(self, call: AnyCall) -> None:
        if late.changes_newer_calls(
            call, self.blocks, self.identities, self.tombstones, self.newest_named
        ):
            self.rebuild.update(call.identities)

    def _user_for(self, call: AnyCall, user_id: str | None, anonymous_id: str | None) -> User:
        user = self.identities.user_for(call, user_id, anonymous_id)
        self._take_identity_findings(call)
        return user

    def _take_identity_findings(self, call: AnyCall) -> None:
        identities = self.identities
        self.warnings += [(call, w) for w in identities.take_warnings()]
        if identities.late:
            if not self.replaying:
                self.rebuild |= identities.late
            identities.late.clear()

    def _typed(
        self,
        call: AnyCall,
        entity: Entity,
        event: str,
        name: str,
        value: Any,
        first_type: AttributeType = "string",
        warn: bool = True,
    ) -> tuple[bool, Any]:
        """A trait or property converted to its defined type; one that does not convert is
        left out, with a warning."""
        attribute_type, ok, typed = self.attributes.typed(
            call.workspace_id, entity, event, name, value, first_type
        )
        if warn and not ok:
            found = self.attributes.left_out(entity, event, name, value, attribute_type)
            self.warnings.append((call, found))
        return ok, typed

    # --- one call type each ---------------------------------------------------------------

    def _identify(self, call: Identify) -> None:
        user = self._user_for(call, call.user_id, call.anonymous_id)
        self.accounts.join(call, user)
        version = call.version
        traits = call.traits or {}
        for column, value in {**user_columns(traits), **context_columns(call.context)}.items():
            user.put(column, value, version)
        audience = engage.audience_trait(call)
        for name, ok, typed in self._typed_user_traits(call, audience):
            if ok:
                user.put_trait(name, typed, version)
                if name == audience and isinstance(typed, bool):
                    self.memberships.append(engage.membership(user, name, typed, call))

    def _track(self, call: Track) -> None:
        user = self._user_for(call, call.user_id, call.anonymous_id)
        account = self.accounts.join(call, user)
        moment = call.occurred_at
        self.events.append(
            Event(
                workspace_id=call.workspace_id,
                message_id=call.messageId,
                version=call.version,
                user=user,
                account=account,
                name=call.event,
                properties=self._typed_properties(call),
                occurred_at=moment,
                received_at=call.receivedAt,
            )
        )
        self._seen_event(call)
        _seen(user, call)
        if (trait := self._typed_engage_trait(call)) is not None:
            name, ok, typed = trait
            if ok:
                user.put_trait(name, typed, call.version)
        if (entered := engage.track_audience(call)) is not None:
            self.memberships.append(engage.membership(user, *entered, call))

    def _page(self, call: Page) -> None:
        user = self._user_for(call, call.user_id, call.anonymous_id)
        account = self.accounts.join(call, user)
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
                account=account,
                view_type="screen" if type(call) is Screen else "page",
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
        _seen(user, call)

    def _group(self, call: Group) -> None:
        user = self._user_for(call, call.user_id, call.anonymous_id)
        self.accounts.join(call, user)

    def _alias(self, call: Alias) -> None:
        self._user_for(call, call.user_id, identifier(call.previousId))
        if call.anonymous_id:
            self._user_for(call, call.user_id, call.anonymous_id)

    def _delete(self, call: Delete) -> None:
        """A tombstone; what it removes is worked out in `changes`, whatever came before."""
        user_id = call.user_id
        assert user_id is not None  # the receiver refuses a delete without one
        key = (call.workspace_id, "user_id", user_id)
        if not self.replaying and (
            (key[0], user_id) in self.identities.by_user_id or key in self.tombstones
        ):
            # What it removes depends on when each call was received, and on the deletes
            # before and after it: the user's calls are replayed in order.
            self.rebuild.add(key)
        tombstone = Tombstone(call.version, user_id, call.receivedAt)
        self.tombstones[key] = self.new_tombstones[key] = tombstone.stronger(
            self.tombstones.get(key)
        )

    # --- shared steps ---------------------------------------------------------------------

    def _workspace_facts(self, call: AnyCall) -> None:
        """What a call tells about the workspace (definitions, accounts), and nothing more."""
        match call:
            case Identify():
                self._typed_user_traits(call, engage.audience_trait(call), warn=False)
            case Track():
                self._typed_properties(call, warn=False)
                self._seen_event(call)
                self._typed_engage_trait(call, warn=False)
        self.accounts.facts(call)

    def _typed_user_traits(
        self, call: Identify, audience: str | None, warn: bool = True
    ) -> list[tuple[str, bool, Any]]:
        """Custom traits converted to their types; an Engage audience's is a boolean."""
        typed_traits = []
        traits = call.traits or {}
        if accounts.company(call) is not None:  # the account's, not the user's
            traits = {k: v for k, v in traits.items() if k != "company"}
        for name, value in custom_user_traits(traits).items():
            first_type = "boolean" if name == audience else first_type_of(name)
            ok, typed = self._typed(call, "user", "", name, value, first_type, warn)
            typed_traits.append((name, ok, typed))
        return typed_traits

    def _typed_properties(self, call: Track, warn: bool = True) -> dict[str, Any]:
        properties = {}
        for name, value in (call.properties or {}).items():
            if value is None:
                continue
            ok, typed = self._typed(call, "event", call.event, name, value, warn=warn)
            if ok:
                properties[name] = typed
        return properties

    def _typed_engage_trait(self, call: Track, warn: bool = True) -> tuple[str, bool, Any] | None:
        """The user trait an Engage track call sets (an audience entered or exited, a
        computed trait), converted to its type."""
        if (entered := engage.track_audience(call)) is not None:
            key, member = entered
            return key, *self._typed(call, "user", "", key, member, "boolean", warn)
        if (computed := engage.computed_trait(call)) is not None:
            name, value = trait_name(computed[0]), computed[1]
            return name, *self._typed(call, "user", "", name, value, first_type_of(name), warn)
        return None

    def _seen_event(self, call: Track) -> None:
        key, moment = (call.workspace_id, call.event), call.occurred_at
        first, last = self.event_seen.get(key, (moment, moment))
        self.event_seen[key] = (min(first, moment), max(last, moment))

    # --- the result -----------------------------------------------------------------------

    def changes(self) -> Changes:
        """What to write once every call is applied."""
        verdicts = judge(self.identities, self.tombstones, self.new_tombstones)
        identities, keeps = self.identities, verdicts.keeps
        live_new = [
            u for u in identities.new_users if u.merged_into is None and u not in verdicts.doomed
        ]
        first_owners, bumps = self._anonymous_ids(verdicts)
        book = self.accounts
        gone_accounts, account_cuts = book.judge()
        return Changes(
            new_users=live_new,
            users=[u for u in verdicts.survivors if u.changed and not u.new] + live_new,
            anonymous_first_owners=first_owners,
            anonymous_bumps=bumps,
            merges=[(u, u.final()) for u in identities.merged if u.final() not in verdicts.doomed],
            unused_accounts=[a for a in book.accounts.values() if a.inserted and not a.used],
            accounts=[a for a in book.accounts.values() if a.changed],
            members=[m for m in book.members if keeps(m.user, m.version)],
            endings=[m for m in book.endings if keeps(m.user, m.version)],
            events=[e for e in self.events if keeps(e.user, e.version)],
            page_views=[v for v in self.page_views if keeps(v.user, v.version)],
            event_seen=self.event_seen,
            new_definitions=self.attributes.new,
            memberships=[
                m
                for m in engage.newest_per_holder(self.memberships)
                if isinstance(m.holder, User) and keeps(m.holder, m.version)
            ],
            account_memberships=engage.newest_per_holder(book.audiences),
            gone=self._gone(verdicts),
            cuts=list(verdicts.cuts.items()),
            tombstones=self.new_tombstones,
            account_tombstones=book.new_tombstones,
            gone_accounts=gone_accounts,
            account_cuts=account_cuts,
            statuses=self.blocks.changed,
            warnings=self.warnings,
            rebuild=self.rebuild,
        )

    def _anonymous_ids(
        self, verdicts: Verdicts
    ) -> tuple[list[tuple[int, str, User, str]], list[tuple[int, str, str]]]:
        """Anonymous ids that get their first owner, and those whose owner a newer call named."""
        first_owners, bumps = [], []
        identities = self.identities
        for key, version in sorted(identities.anonymous_versions.items()):
            owner = identities.by_anonymous_id[key].final()
            if owner in verdicts.doomed:
                continue
            if key in identities.owned_anonymous_ids:
                bumps.append((*key, version))
            else:
                first_owners.append((*key, owner, version))
        return first_owners, bumps

    def _gone(self, verdicts: Verdicts) -> list[tuple[User, Tombstone]]:
        """Stored users a delete removes; users merged into a doomed one go with it."""
        doomed = verdicts.doomed
        return [(u, t) for u, t in doomed.items() if u.pk is not None] + [
            (u, doomed[u.final()]) for u in self.identities.merged if u.final() in doomed
        ]


def _seen(user: User, call: Track | Page) -> None:
    """Page, screen and track move the seen times, unless the call says it is not the user's
    own doing (`context.active: false`, a server-side call)."""
    if not (call.context and call.context.active is False):
        user.seen(call.occurred_at)


# Dispatch on the exact type: `isinstance` on Struct classes goes the slow ABC way.
_APPLY: dict[type[Any], Callable[[Batch, Any], None]] = {
    Identify: Batch._identify,
    Track: Batch._track,
    Page: Batch._page,
    Screen: Batch._page,
    Group: Batch._group,
    Alias: Batch._alias,
    Delete: Batch._delete,
}
