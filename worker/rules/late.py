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
from worker.rules.identity import Identities
from worker.rules.records import Tombstone


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
        newest = [blocks.newest_judged(call)] + [
            u.touched for k in call.identities if (u := identities.holder_of(k))
        ]
        newest += [named.get(k, "") for k in call.identities]
        if call.version < max(newest):
            return True
    return _claims_a_deleted_users_id(call, tombstones)


def pairs_an_owned_id(call: AnyCall, identities: Identities) -> bool:
    """Whether a call a delete removed names an anonymous id someone holds now: had it
    come in order, its userId might have held the id first (and lost it to the delete)."""
    return call.user_id is not None and any(
        identities.holder_of(k) is not None for k in call.identities if k[1] != "user_id"
    )


def _claims_a_deleted_users_id(call: AnyCall, tombstones: dict[IdentityKey, Tombstone]) -> bool:
    user_id = call.user_id
    return (
        bool(tombstones)
        and user_id is not None
        and any(
            (t := tombstones.get(k)) is not None and t.user_id not in (None, user_id)
            for k in call.identities
            if k[1] != "user_id"
        )
    )
