"""The records the rules work on: users and accounts (last-writer-wins per field), and
the events, page views, memberships and tombstones a batch adds.

Every column and trait remembers the version (call time, then messageId) that wrote
it, so a value is replaced only by a newer call, whatever order calls arrive in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

WorkspaceId = int


def split_version(version: str) -> tuple[datetime, str]:
    """A version back into (call time, messageId), as events and page views store them."""
    moment, _, message_id = version.partition("|")
    return datetime.strptime(moment, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC), message_id


@dataclass(eq=False)
class Profile:
    """Fields shared by users and accounts."""

    workspace_id: WorkspaceId
    pk: int | None = None  # None until a new row is given an id at flush
    columns: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    new: bool = False
    changed: bool = False  # anything to write
    # A column, trait or id to write, not only counters and seen times: see `users.save`.
    fields_changed: bool = False
    touched: str = ""  # the newest call applied to it (for deletes: see `rules.tombstones`)

    def put(self, column: str, value: Any, version: str) -> None:
        if version > self.versions.get(column, ""):
            self.columns[column] = value
            self.versions[column] = version
            self.changed = self.fields_changed = True

    def put_trait(self, name: str, value: Any, version: str) -> None:
        key = f"traits.{name}"
        if version > self.versions.get(key, ""):
            self.traits[name] = value
            self.versions[key] = version
            self.changed = self.fields_changed = True

    def touch(self, version: str) -> None:
        if version > self.touched:
            self.touched = version
            self.changed = True

    def forget_before(self, version: str) -> None:
        """Drop every field last written before `version` (a delete at that version)."""
        for key, written in list(self.versions.items()):
            if written < version:
                del self.versions[key]
                if key.startswith("traits."):
                    self.traits.pop(key.removeprefix("traits."), None)
                else:
                    self.columns.pop(key, None)
                self.changed = self.fields_changed = True

    def absorb(self, other: Profile) -> None:
        """Take every field of `other` that was written later than ours."""
        for key, version in other.versions.items():
            if key.startswith("traits."):
                name = key.removeprefix("traits.")
                if name in other.traits:
                    self.put_trait(name, other.traits[name], version)
            elif key in other.columns:
                self.put(key, other.columns[key], version)


@dataclass(eq=False)
class User(Profile):
    user_id: str | None = None
    page_views: int = 0
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None
    merged_into: User | None = None

    def final(self) -> User:
        """The user this one now lives in (itself unless merged away)."""
        user = self
        while user.merged_into is not None:
            user = user.merged_into
        return user

    def seen(self, moment: datetime) -> None:
        if self.first_seen_at is None or moment < self.first_seen_at:
            self.first_seen_at = moment
            self.changed = True
        if self.last_seen_at is None or moment > self.last_seen_at:
            self.last_seen_at = moment
            self.changed = True

    def merge_from(self, loser: User) -> None:
        """Fold a user without a userId into this one: the newer value of each field wins,
        counters add up, and seen times widen."""
        self.absorb(loser)
        self.touch(loser.touched)
        self.page_views += loser.page_views
        for moment in (loser.first_seen_at, loser.last_seen_at):
            if moment is not None:
                self.seen(moment)
        loser.merged_into = self
        self.changed = self.fields_changed = True


@dataclass(eq=False)
class Account(Profile):
    group_id: str = ""
    # Created empty by this batch before it was locked (see `worker.sql.accounts.lock`), and
    # whether a call of the batch went on to use it: an unused one is removed again.
    inserted: bool = False
    used: bool = False


@dataclass(frozen=True, slots=True)
class Event:
    workspace_id: int
    message_id: str
    version: str
    user: User
    account: Account | None  # the account of its `context.groupId`
    name: str
    properties: dict[str, Any]
    occurred_at: datetime
    received_at: datetime


@dataclass(frozen=True, slots=True)
class PageView:
    workspace_id: int
    message_id: str
    version: str
    user: User
    account: Account | None  # the account of its `context.groupId`
    view_type: str  # "page" or "screen": the `kind` column
    name: str | None
    category: str | None
    url: str | None
    path: str | None
    title: str | None
    referrer: str | None
    properties: dict[str, Any]
    occurred_at: datetime
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Membership:
    """An Engage audience (or journey step) entered or exited, by a user or an account."""

    holder: User | Account
    audience_key: str
    member: bool
    computation_class: str | None
    computation_id: str | None
    space_id: str | None
    version: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AccountMember:
    """A user made a member of an account (or ended being one) by a call at `version`."""

    account: Account
    user: User
    version: str


@dataclass(frozen=True, slots=True)
class Tombstone:
    version: str  # calls older than this are ignored
    user_id: str | None  # whose the identity was, for an anonymous id
    # When the delete was received: calls received before it are ignored whatever their time.
    received: datetime | None = None

    def stronger(self, other: Tombstone | None) -> Tombstone:
        """One tombstone for two deletes of the same identity: either ignores a call."""
        if other is None:
            return self
        newer, older = (self, other) if self.version >= other.version else (other, self)
        received = [r for r in (self.received, other.received) if r is not None]
        return Tombstone(
            newer.version, newer.user_id or older.user_id, max(received) if received else None
        )

    def ignores(self, call_version: str, received_at: datetime) -> bool:
        """Whether a call at this version, received then, is one the delete removed."""
        return self.version >= call_version or (
            self.received is not None and received_at < self.received
        )
