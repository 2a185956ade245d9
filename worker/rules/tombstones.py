"""Deletes as tombstones: a delete at a version removes what is older than it and leaves
a tombstone, so that older calls arriving later are ignored and the final rows do not
depend on the order calls arrive in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from sextant.calls import (
    AnyCall,
    Context,
    Group,
    Identify,
    IdentityKey,
    Page,
    Screen,
    Track,
    email_in,
)
from worker.rules.identity import Identities, identity_key, secondary_of
from worker.rules.records import Tombstone, User


def is_older_than_a_delete(call: AnyCall, tombstones: dict[IdentityKey, Tombstone]) -> bool:
    """Whether a delete removed this call: its userId's, or (for a call without a userId of
    its own) its anonymous id's or email's, older than the delete or received before it."""
    user_id = call.user_id
    for key in call.identities:
        tombstone = tombstones.get(key)
        if tombstone is None or (key[1] != "user_id" and user_id not in (None, tombstone.user_id)):
            continue
        if tombstone.ignores(call.version, call.receivedAt):
            return True
    return False


def is_older_than_its_owners_delete(
    call: AnyCall, identities: Identities, tombstones: dict[IdentityKey, Tombstone]
) -> bool:
    """Whether a call without a userId leads, through its anonymous id or email, to a user
    whose delete removed it: what a batch's end marks with tombstones (see `judge`), the
    calls after it in the same batch see already."""
    if call.user_id is not None:
        return False
    ws = call.workspace_id
    for key in call.identities:
        owner = identities.holder_of(key)
        user_id = owner.final().user_id if owner is not None else None
        tombstone = tombstones.get((ws, "user_id", user_id)) if user_id else None
        if tombstone is not None and tombstone.ignores(call.version, call.receivedAt):
            return True
    return False


def remember_pairing(
    call: AnyCall,
    identities: Identities,
    tombstones: dict[IdentityKey, Tombstone],
    new_tombstones: dict[IdentityKey, Tombstone],
) -> None:
    """An ignored call still says whose its anonymous ids are.

    Newer calls with only such an anonymous id then find that user, as they would have
    had the ignored call come first.
    """
    ws, user_id = call.workspace_id, call.user_id
    deleted = tombstones.get((ws, "user_id", user_id or ""))
    if user_id is None or deleted is None:
        return
    for key in call.identities:
        if (anonymous_id := secondary_of(key)) is None:
            continue
        owner = identities.by_anonymous_id.get((ws, anonymous_id))
        if owner is not None and owner.final().user_id not in (None, user_id):
            continue  # another userId's claim came first: it was never this user's
        if owner is not None:
            # An anonymous user that newer calls made joins the userId as usual.
            identities.resolve(ws, user_id, anonymous_id)
        stronger = Tombstone(deleted.version, user_id, deleted.received).stronger(
            tombstones.get(key)
        )
        tombstones[key] = new_tombstones[key] = stronger


def what_a_delete_keeps(call: AnyCall) -> AnyCall:
    """A removed call as the journal keeps it once its user is deleted: what says whom it
    named and when (identities, an email identity, Engage's mark, an event's name), so that
    a replay decides the same owners and statuses; nothing else it said of the person."""
    context = call.context
    email = email_in("track", None, {"traits": context.traits}) if context else None
    changes: dict[str, Any] = {
        "sextant": msgspec.structs.replace(call.sextant, warnings=[]),
        "context": None
        if context is None
        else Context(
            personas=context.personas,
            groupId=context.groupId,
            traits={"email": email} if email else None,
        ),
    }
    if type(call) is Identify or type(call) is Group:
        traits = call.traits or {}
        changes["traits"] = (
            {"email": traits["email"]} if type(call) is Identify and ("email" in traits) else None
        )
    elif type(call) is Track or type(call) is Page or type(call) is Screen:
        changes["properties"] = None
    if type(call) is Page or type(call) is Screen:
        changes["name"] = changes["category"] = None
    return msgspec.structs.replace(call, **changes)


@dataclass
class Verdicts:
    """What the batch's tombstones leave of its users."""

    survivors: list[User] = field(default_factory=list)
    cuts: dict[User, Tombstone] = field(default_factory=dict)  # keeps what is newer than these
    doomed: dict[User, Tombstone] = field(default_factory=dict)  # goes altogether

    def keeps(self, user: User, version: str) -> bool:
        """Whether a row written by a call at `version` for `user` stays."""
        final = user.final()
        cut = self.cuts.get(final)
        return final not in self.doomed and (cut is None or version >= cut.version)


def judge(
    identities: Identities,
    tombstones: dict[IdentityKey, Tombstone],
    new_tombstones: dict[IdentityKey, Tombstone],
) -> Verdicts:
    """Split the batch's users into survivors and the doomed.

    A user whose userId has a tombstone keeps only what is newer than it (a cut), and goes
    altogether when nothing newer touched it; its anonymous ids get tombstones naming it.
    """
    verdicts = Verdicts()
    for user in identities.finals():
        key = (user.workspace_id, "user_id", user.user_id or "")
        tombstone = tombstones.get(key) if user.user_id else None
        if tombstone is None:
            verdicts.survivors.append(user)
        elif user.touched < tombstone.version:
            verdicts.doomed[user] = tombstone
        else:
            user.forget_before(tombstone.version)
            verdicts.cuts[user] = tombstone
            verdicts.survivors.append(user)
    for (ws, anonymous_id), owner in identities.by_anonymous_id.items():
        if (tombstone := verdicts.doomed.get(owner.final())) is not None:
            new_tombstones[identity_key(ws, anonymous_id)] = tombstone
    return verdicts
