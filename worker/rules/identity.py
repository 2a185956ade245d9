"""Who a call is about: a user found by userId, else by anonymous id, else created; anonymous
ids attached to the userId's user, and anonymous users merged into it.

Users with different userIds are never merged. An identified user holds at most `cap`
anonymous ids: past that, a new one stays with its own anonymous user. An anonymous id
that belonged to a deleted user leads calls newer than the delete back to that userId.

Engage's emails (an Engage call for an email-only profile, an identify with a userId and
an email) are identities kept as anonymous ids are, under the same rules and cap. In
memory both live in one map, an email told apart by a mark no identifier can carry (the
receiver and the decoder remove NUL); `identity_key` and `secondary_of` translate.
"""

from __future__ import annotations

from collections.abc import Iterable

from sextant.calls import AnyCall, IdentityKey, IngestionWarning
from worker.rules.records import Tombstone, User

AnonymousKey = tuple[int, str]  # (workspace, anonymous id or marked email)
EMAIL_MARK = "\x00"


def email_id(email: str) -> str:
    return EMAIL_MARK + email


def is_email_id(secondary: str) -> bool:
    return secondary.startswith(EMAIL_MARK)


def identity_key(ws: int, secondary: str) -> IdentityKey:
    """An anonymous id or marked email as the identity tombstones and blocks are kept by."""
    if is_email_id(secondary):
        return (ws, "email", secondary.removeprefix(EMAIL_MARK))
    return (ws, "anonymous_id", secondary)


def secondary_of(key: IdentityKey) -> str | None:
    """An identity as this module keeps it beside anonymous ids; None for a userId."""
    _, kind, value = key
    if kind == "anonymous_id":
        return value
    return email_id(value) if kind == "email" else None


def split_identities(
    keys: Iterable[IdentityKey],
) -> tuple[list[AnonymousKey], list[AnonymousKey]]:
    """(workspace, userId) and (workspace, anonymous id or marked email) of these
    identities, each sorted: the order users are locked in."""
    user_ids, secondaries = [], []
    for key in keys:
        secondary = secondary_of(key)
        if secondary is None:
            user_ids.append((key[0], key[2]))
        else:
            secondaries.append((key[0], secondary))
    return sorted(user_ids), sorted(secondaries)


def shown(secondary: str) -> dict[str, str]:
    """An anonymous id or marked email as a warning names it."""
    if is_email_id(secondary):
        return {"email": secondary.removeprefix(EMAIL_MARK)}
    return {"anonymous_id": secondary}


class Identities:
    """The users of a batch by userId and by anonymous id, and what the batch did to them."""

    def __init__(
        self,
        users: list[User],
        anonymous_owners: dict[AnonymousKey, User],
        tombstones: dict[IdentityKey, Tombstone],
        anonymous_counts: dict[int, int] | None = None,
        cap: int = 500,
        named_with_owner: dict[AnonymousKey, str] | None = None,
    ) -> None:
        self.loaded = users
        self.by_user_id: dict[AnonymousKey, User] = {
            (u.workspace_id, u.user_id): u for u in users if u.user_id is not None
        }
        self.by_anonymous_id: dict[AnonymousKey, User] = dict(anonymous_owners)
        self.owned_anonymous_ids = set(anonymous_owners)  # owned before this batch
        # The newest call that named each anonymous id together with its owner.
        self.anonymous_versions: dict[AnonymousKey, str] = {}
        # The same, as stored before this batch: a refused claim older than it may be the
        # earliest, which would move the id (see `worker.rebuild`).
        self._stored_versions = named_with_owner or {}
        # Identities whose users a call arriving late may change (see `worker.rebuild`): a
        # claim older than the one holding the id, a deleted userId taking in a user.
        self.late: set[IdentityKey] = set()
        self.new_users: list[User] = []
        self.merged: list[User] = []  # loaded users merged into another
        # (anonymous id, the userId it belongs to) for each merge refused since last taken
        self.refused: list[tuple[str, str]] = []
        # (anonymous id, the userId) for each one not attached for the cap, since last taken
        self.capped: list[tuple[str, str]] = []
        self._tombstones = tombstones
        self._cap = cap
        counts = anonymous_counts or {}
        self._held: dict[User, int] = {u: counts.get(u.pk or 0, 0) for u in users}

    def holder_of(self, key: IdentityKey) -> User | None:
        """The user an identity leads to now: its userId's, or the one holding its anonymous
        id or email."""
        secondary = secondary_of(key)
        if secondary is None:
            return self.by_user_id.get((key[0], key[2]))
        return self.by_anonymous_id.get((key[0], secondary))

    def user_for(self, call: AnyCall, user_id: str | None, anonymous_id: str | None) -> User:
        """The call's user, created if need be; an anonymous id (or email) it names is
        attached."""
        ws = call.workspace_id
        email = email_id(call.email) if call.email else None
        if user_id is None and anonymous_id is None:
            anonymous_id = email  # an Engage call for an email-only profile
        if user_id is None and anonymous_id is not None:
            user_id = self._deleted_owner(ws, anonymous_id)
        user = self.resolve(ws, user_id, anonymous_id, call.version)
        user.touch(call.version)
        self._named_together(call, anonymous_id, user)
        if email is not None and email != anonymous_id and user_id is not None:
            self._named_together(call, email, self.resolve(ws, user_id, email, call.version))
        return user

    def _named_together(self, call: AnyCall, anonymous_id: str | None, user: User) -> None:
        """Remember the newest call that named an anonymous id with the user owning it."""
        key = (call.workspace_id, anonymous_id or "")
        if anonymous_id is not None and self.by_anonymous_id.get(key) is user:
            self.anonymous_versions[key] = max(call.version, self.anonymous_versions.get(key, ""))

    def resolve(
        self, ws: int, user_id: str | None, anonymous_id: str | None, version: str = ""
    ) -> User:
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
                self._taken_in_by_a_deleted_user_id(ws, user_id)
                user.user_id = user_id
                user.changed = user.fields_changed = True
            else:
                user = self._new_user(ws, user_id)
            self.by_user_id[(ws, user_id)] = user
        if anonymous_id is not None and anonymous is not user:
            if anonymous is not None and anonymous.user_id is not None:  # never merged
                self.refused.append((anonymous_id, anonymous.user_id))
                key = (ws, anonymous_id)
                if version < self._stored_versions.get(key, ""):
                    self.late |= {
                        identity_key(ws, anonymous_id),
                        (ws, "user_id", user_id),
                        (ws, "user_id", anonymous.user_id),
                    }
            elif self._held.get(user, 0) >= self._cap:
                self.capped.append((anonymous_id, user_id))
            elif anonymous is None:
                self.by_anonymous_id[(ws, anonymous_id)] = user
                self._held[user] = self._held.get(user, 0) + 1
            else:
                self._merge(anonymous, user)
                self._held[user] = self._held.get(user, 0) + self._held.get(anonymous, 1)
        return user

    def take_warnings(self) -> list[IngestionWarning]:
        """Merges refused and ids past the cap since last taken, as warnings."""
        if not (self.refused or self.capped):  # asked after every call: nearly always
            return []
        found = [
            IngestionWarning(
                "merge_refused",
                {
                    **shown(anonymous_id),
                    "belongs_to_user_id": owner,
                    "rule": "users with different userIds are never merged",
                },
            )
            for anonymous_id, owner in self.refused
        ] + [
            IngestionWarning(
                "identity_cap_reached",
                {
                    **shown(anonymous_id),
                    "user_id": user_id,
                    "limit": self._cap,
                    "rule": "a user holds at most this many anonymous ids; this one stays apart",
                },
            )
            for anonymous_id, user_id in self.capped
        ]
        self.refused.clear()
        self.capped.clear()
        return found

    def finals(self) -> list[User]:
        """Every user of the batch that was not merged into another."""
        return [u for u in self.loaded + self.new_users if u.merged_into is None]

    def _deleted_owner(self, ws: int, anonymous_id: str) -> str | None:
        """The userId an unowned anonymous id belonged to before a delete, if any: a call
        newer than the delete finds that user again, as it would have before the delete."""
        if (ws, anonymous_id) in self.by_anonymous_id:
            return None
        tombstone = self._tombstones.get(identity_key(ws, anonymous_id))
        return tombstone.user_id if tombstone else None

    def _new_user(self, ws: int, user_id: str | None) -> User:
        user = User(workspace_id=ws, user_id=user_id, new=True, changed=True)
        self.new_users.append(user)
        return user

    def _taken_in_by_a_deleted_user_id(self, ws: int, user_id: str | None) -> None:
        """A deleted userId taking in an anonymous user: which of its calls the delete
        removed depends on when each was received, so the users are replayed."""
        deleted = (ws, "user_id", user_id or "")
        if deleted in self._tombstones:
            self.late.add(deleted)

    def _merge(self, loser: User, winner: User) -> None:
        self._taken_in_by_a_deleted_user_id(winner.workspace_id, winner.user_id)
        winner.merge_from(loser)
        for key, owner in list(self.by_anonymous_id.items()):
            if owner is loser:
                self.by_anonymous_id[key] = winner
        if loser.pk is not None:
            self.merged.append(loser)
