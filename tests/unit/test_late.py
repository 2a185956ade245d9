"""Which calls arrive too late to apply where they stand, what a delete's tombstone
ignores, and what the journal keeps of a call a delete removed (pure rules)."""

from __future__ import annotations

from datetime import UTC, datetime

from sextant.calls import Identify, Page, Track
from tests.unit.test_rules import BLOCKING_CONNECTOR, WS, call
from worker.rules import late
from worker.rules.free_email import EmailStatus, FreeEmailBlocks
from worker.rules.identity import Identities
from worker.rules.records import Tombstone, User
from worker.rules.tombstones import what_a_delete_keeps

T10 = "2026-01-01T10:00:00.000000Z|m1"
AT_10 = datetime(2026, 1, 1, 10, tzinfo=UTC)
AT_11 = datetime(2026, 1, 1, 11, tzinfo=UTC)


def test_a_tombstone_ignores_calls_older_than_the_delete_or_received_before_it() -> None:
    tombstone = Tombstone(T10, "u1", AT_10)
    assert tombstone.ignores("2026-01-01T09:00:00.000000Z|m0", AT_11)  # older
    received_before = AT_10.replace(hour=9)
    assert tombstone.ignores("2026-01-01T10:05:00.000000Z|m2", received_before)
    assert not tombstone.ignores("2026-01-01T10:05:00.000000Z|m2", AT_11)  # newer, after
    assert not Tombstone(T10, "u1").ignores("2026-01-01T10:05:00.000000Z|m2", AT_10)


def test_two_deletes_make_one_tombstone_that_ignores_what_either_would() -> None:
    older = Tombstone(T10, "u1", AT_11)
    newer = Tombstone("2026-01-01T12:00:00.000000Z|m9", "u2", AT_10)
    both = older.stronger(newer)
    assert (both.version, both.user_id, both.received) == (newer.version, "u2", AT_11)
    assert newer.stronger(None) is newer


def blocks(**statuses: EmailStatus) -> FreeEmailBlocks:
    return FreeEmailBlocks(
        {(WS, "user_id", user_id): status for user_id, status in statuses.items()},
        {BLOCKING_CONNECTOR},
    )


def identities(*users: User) -> Identities:
    return Identities(list(users), {}, {})


def test_a_call_older_than_its_identitys_free_email_status_is_late() -> None:
    status = blocks(u1=EmailStatus("2026-01-01T10:00:00.000000Z|x", blocked=True))
    older = call({"type": "track", "userId": "u1", "event": "E",
                  "timestamp": "2026-01-01T09:00:00Z"})  # fmt: skip
    newer = call({"type": "track", "userId": "u1", "event": "E",
                  "timestamp": "2026-01-01T11:00:00Z"})  # fmt: skip
    assert late.changes_newer_calls(older, status, identities(), {})
    assert not late.changes_newer_calls(newer, status, identities(), {})


def test_an_email_identify_older_than_calls_already_applied_is_late() -> None:
    user = User(workspace_id=WS, pk=1, user_id="u1", touched="2026-01-01T10:30:00.000000Z|x")
    message = {"type": "identify", "userId": "u1", "traits": {"email": "jo@gmail.com"}}
    early = call({**message, "timestamp": "2026-01-01T10:00:00Z"}, connector=BLOCKING_CONNECTOR)
    later = call({**message, "timestamp": "2026-01-01T11:00:00Z"}, connector=BLOCKING_CONNECTOR)
    unblocking = call({**message, "timestamp": "2026-01-01T10:00:00Z"})  # another connector
    assert late.changes_newer_calls(early, blocks(), identities(user), {})
    assert not late.changes_newer_calls(later, blocks(), identities(user), {})
    assert not late.changes_newer_calls(unblocking, blocks(), identities(user), {})


def test_a_userid_naming_an_anonymous_id_a_deleted_user_held_is_late() -> None:
    tombstones = {(WS, "anonymous_id", "a1"): Tombstone(T10, "u1", AT_10)}
    other = call({"type": "track", "userId": "u2", "anonymousId": "a1", "event": "E"})
    same = call({"type": "track", "userId": "u1", "anonymousId": "a1", "event": "E"})
    assert late.changes_newer_calls(other, blocks(), identities(), tombstones)
    assert not late.changes_newer_calls(same, blocks(), identities(), tombstones)


def test_the_journal_keeps_of_a_removed_call_whom_it_named_and_when() -> None:
    identify = call({
        "type": "identify", "userId": "u1", "anonymousId": "a1",
        "traits": {"email": "jo@initech.com", "plan": "pro", "phone": "555"},
        "context": {"ip": "203.0.113.9", "groupId": "g1", "traits": {"email": "jo@initech.com"},
                    "personas": {"computation_class": "audience", "computation_key": "k"}},
        "timestamp": "2026-01-01T10:00:00Z",
    })  # fmt: skip
    kept = what_a_delete_keeps(identify)
    assert type(kept) is Identify
    assert kept.traits == {"email": "jo@initech.com"}
    assert kept.context is not None
    assert kept.context.ip is None
    assert (kept.context.groupId, kept.context.traits) == ("g1", {"email": "jo@initech.com"})
    assert (kept.identities, kept.version, kept.email) == (
        identify.identities,
        identify.version,
        identify.email,
    )
    track = what_a_delete_keeps(
        call({"type": "track", "userId": "u1", "event": "Paid", "properties": {"card": "4242"}})
    )
    assert type(track) is Track
    assert (track.event, track.properties) == ("Paid", None)
    page = what_a_delete_keeps(
        call({"type": "page", "userId": "u1", "name": "Secret", "properties": {"url": "x"}})
    )
    assert type(page) is Page
    assert (page.name, page.properties, page.context) == (None, None, None)
