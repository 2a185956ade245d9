"""Accounts from every call (Segment's B2B spec): besides a group call's `groupId`, an
identify's `traits.company` (an object with an `id`) and any call's `context.groupId`
name the account the call belongs to; its user becomes a member."""

from __future__ import annotations

from typing import Any

from sextant.calls import AnyCall, Group, Identify, Track, identifier


def company(call: AnyCall) -> dict[str, Any] | None:
    """An identify's `traits.company` when it names an account (an object with an id)."""
    if type(call) is not Identify:
        return None
    found = (call.traits or {}).get("company")
    if isinstance(found, dict) and identifier(found.get("id")):
        return found
    return None


def context_group(call: AnyCall) -> str | None:
    """The account a call says it belongs to in `context.groupId`."""
    return identifier(call.context.groupId) if call.context else None


def group_of(call: AnyCall) -> str | None:
    """A group call's own groupId."""
    return str(identifier(call.groupId)) if type(call) is Group else None


def named_groups(call: AnyCall) -> set[str]:
    """Every groupId a call names: its accounts are loaded (and created) before it applies."""
    named: set[str] = set()
    if type(call) is Group:
        named.add(str(identifier(call.groupId)))
    if (found := company(call)) is not None:
        named.add(str(identifier(found["id"])))
    if (group := context_group(call)) is not None:
        named.add(group)
    return named


def created_name(call: Track) -> str | None:
    """The name an `Account Created` event gives its account (`properties.account_name`)."""
    if call.event != "Account Created":
        return None
    name = (call.properties or {}).get("account_name")
    return name if isinstance(name, str) and name else None


def company_traits(found: dict[str, Any]) -> dict[str, Any]:
    """A company's traits as a group call's: `employee_count` is `employees`."""
    traits = {k: v for k, v in found.items() if k not in ("id", "employee_count")}
    if "employees" not in traits and found.get("employee_count") is not None:
        traits["employees"] = found["employee_count"]
    return traits
