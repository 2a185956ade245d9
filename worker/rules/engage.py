"""Engage: audiences and journey steps (a boolean trait and a membership per user, or per
account for a group call, the newest call deciding whether it is a member), and computed
traits."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from sextant.calls import AnyCall, Group, Identify, Track
from worker.rules.records import Account, Membership, User

AUDIENCE_CLASSES: Final = frozenset({"audience", "journey_step"})
AUDIENCE_EVENTS: Final = {"Audience Entered": True, "Audience Exited": False}


def audience_trait(call: Identify | Group) -> str | None:
    """The trait an Engage audience identify (or, for an account audience, group) sets."""
    personas = call.context.personas if call.context else None
    if personas and personas.computation_class in AUDIENCE_CLASSES:
        return personas.computation_key
    return None


def track_audience(call: Track) -> tuple[str, bool] | None:
    """The audience an `Audience Entered` / `Audience Exited` call names, and whether the
    user is now a member."""
    member = AUDIENCE_EVENTS.get(call.event)
    if member is None:
        return None
    personas = call.context.personas if call.context else None
    key = (call.properties or {}).get("audience_key") or (
        personas.computation_key if personas else None
    )
    if not isinstance(key, str) or not key:
        return None
    return key, member


def computed_trait(call: Track) -> tuple[str, Any] | None:
    """The trait a `Trait Computed` call sets (computation class `trait`), and its value."""
    if call.event != "Trait Computed":
        return None
    personas = call.context.personas if call.context else None
    if personas is not None and personas.computation_class not in (None, "trait"):
        return None
    properties = call.properties or {}
    key = properties.get("trait_key") or (personas.computation_key if personas else None)
    if not isinstance(key, str) or not key or key not in properties:
        return None
    return key, properties[key]


def membership(holder: User | Account, audience: str, member: bool, call: AnyCall) -> Membership:
    personas = call.context.personas if call.context else None
    return Membership(
        holder=holder,
        audience_key=audience,
        member=member,
        computation_class=personas.computation_class if personas else None,
        computation_id=personas.computation_id if personas else None,
        space_id=personas.space_id if personas else None,
        version=call.version,
        updated_at=call.occurred_at,
    )


def newest_per_holder(memberships: Iterable[Membership]) -> list[Membership]:
    """One membership per (user or account, audience), the newest; users merged away count
    as the user they were merged into."""
    newest: dict[tuple[User | Account, str], Membership] = {}
    for m in memberships:
        holder = m.holder.final() if isinstance(m.holder, User) else m.holder
        key = (holder, m.audience_key)
        current = newest.get(key)
        if current is None or m.version > current.version:
            newest[key] = m
    return list(newest.values())
