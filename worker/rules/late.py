"""Calls that arrive after newer calls whose fate they change. Most calls commute: applied
in any order, they leave the same rows. These do not, and their users are rebuilt from
their calls in call-time order (`worker.rebuild`):

- a call older than the identify that set its identities' free-email status (whether it
  is ignored depends on the status at its own time);
- an email identify on a blocking connector older than calls that already named its
  identities, whichever user they went to (it blocks or lets in calls newer than itself);
- a call naming a userId with an anonymous id a deleted user held.

Deletes and anonymous ids claimed by two userIds are caught where they are applied
(`Batch._delete`, `Identities.resolve`).
"""

from __future__ import annotations

from sextant.calls import AnyCall, Identify, IdentityKey
from worker.rules.free_email import FreeEmailBlocks
from worker.rules.identity import Identities, secondary_of
from worker.rules.records import Tombstone, User


def changes_newer_calls(
    call: AnyCall,
    blocks: FreeEmailBlocks,
    identities: Identities,
    tombstones: dict[IdentityKey, Tombstone],
    newest_named: dict[IdentityKey, str] | None = None,
) -> bool:
    if call.version < blocks.set_since(call):
        return True
    if type(call) is Identify and blocks.email_identify(call) is not None:
        named = newest_named or {}
        newest = [blocks.newest_judged(call)] + [u.touched for u in _named(call, identities)]
        newest += [named.get(k, "") for k in call.identities]
        if call.version < max(newest):
            return True
    return _claims_a_deleted_users_id(call, tombstones)


def pairs_an_owned_id(call: AnyCall, identities: Identities) -> bool:
    """Whether a call a delete removed names an anonymous id someone holds now: had it
    come in order, its userId might have held the id first (and lost it to the delete)."""
    ws = call.workspace_id
    return call.user_id is not None and any(
        (ws, s) in identities.by_anonymous_id
        for k in call.identities
        if (s := secondary_of(k)) is not None
    )


def _named(call: AnyCall, identities: Identities) -> list[User]:
    """The users the call's identities already lead to."""
    ws, found = call.workspace_id, []
    for key in call.identities:
        secondary = secondary_of(key)
        user = (
            identities.by_user_id.get((ws, key[2]))
            if secondary is None
            else identities.by_anonymous_id.get((ws, secondary))
        )
        if user is not None:
            found.append(user)
    return found


def _claims_a_deleted_users_id(call: AnyCall, tombstones: dict[IdentityKey, Tombstone]) -> bool:
    user_id = call.user_id
    return user_id is not None and any(
        (t := tombstones.get(k)) is not None and t.user_id not in (None, user_id)
        for k in call.identities
        if k[1] != "user_id"
    )
