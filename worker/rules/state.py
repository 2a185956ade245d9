"""What a batch starts from (the rows and facts loaded and locked for it), the limits it
keeps to, and what it ends with (the changes to write)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sextant.calls import AnyCall, IdentityKey, IngestionWarning
from worker.rules.attributes import AttributeType, Definitions
from worker.rules.free_email import EmailStatus
from worker.rules.identity import AnonymousKey
from worker.rules.records import (
    Account,
    AccountMember,
    Event,
    Membership,
    PageView,
    Tombstone,
    User,
)

EventSeen = dict[tuple[int, str], tuple[datetime, datetime]]  # (ws, event) -> first, last


@dataclass
class Loaded:
    """The rows and facts a batch reads before it applies, its users and accounts locked."""

    users: list[User] = field(default_factory=list)
    anonymous_owners: dict[AnonymousKey, User] = field(default_factory=dict)
    accounts: dict[tuple[int, str], Account] = field(default_factory=dict)  # by group id
    account_tombstones: dict[tuple[int, str], str] = field(default_factory=dict)  # version
    definitions: Definitions = field(default_factory=dict)
    tombstones: dict[IdentityKey, Tombstone] = field(default_factory=dict)
    statuses: dict[IdentityKey, EmailStatus] = field(default_factory=dict)  # free email
    blocking_connectors: set[int] = field(default_factory=set)
    anonymous_counts: dict[int, int] = field(default_factory=dict)  # by user pk
    # The newest call that named each anonymous id (or email) with its owner, as stored.
    named_with_owner: dict[AnonymousKey, str] = field(default_factory=dict)
    # For identities an email identify may block or let in: the newest call of another
    # batch naming them, whichever user it went to.
    newest_named: dict[IdentityKey, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Limits:
    """What a workspace's data may grow to (MAX_ANONYMOUS_IDS_PER_USER,
    MAX_ATTRIBUTES_PER_ENTITY)."""

    max_anonymous_ids_per_user: int = 500
    max_attributes_per_entity: int = 1000


DEFAULT_LIMITS = Limits()


@dataclass
class Changes:
    """What a batch writes, in the order it must be written."""

    new_users: list[User]  # given ids first, since the rest refer to them
    users: list[User]
    anonymous_first_owners: list[tuple[int, str, User, str]]  # (ws, id, owner, version)
    anonymous_bumps: list[tuple[int, str, str]]  # (ws, id, newest version naming it)
    merges: list[tuple[User, User]]  # (merged away, the user it lives in now)
    unused_accounts: list[Account]
    accounts: list[Account]
    members: list[AccountMember]
    endings: list[AccountMember]  # memberships ended (Account Removed User)
    events: list[Event]
    page_views: list[PageView]
    event_seen: EventSeen
    new_definitions: dict[tuple[int, str, str, str], AttributeType]
    memberships: list[Membership]  # users' audiences
    account_memberships: list[Membership]  # accounts' audiences
    gone: list[tuple[User, Tombstone]]  # users deleted with every row hanging off them
    cuts: list[tuple[User, Tombstone]]  # users that keep only what is newer than the delete
    tombstones: dict[IdentityKey, Tombstone]
    account_tombstones: dict[tuple[int, str], str]  # (ws, group id) -> Account Deleted version
    gone_accounts: list[Account]  # deleted with their memberships
    account_cuts: list[tuple[Account, str]]  # accounts that keep only what is newer
    statuses: dict[IdentityKey, EmailStatus]  # free-email statuses set or judged
    warnings: list[tuple[AnyCall, IngestionWarning]]  # found by the rules, per call
    # Identities whose users a call arriving late may change in ways applying it here
    # cannot: they are rebuilt from their calls in call-time order (`worker.rebuild`).
    rebuild: set[IdentityKey]
