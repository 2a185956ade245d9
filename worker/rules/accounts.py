"""Accounts from every call (Segment's B2B spec): besides a group call's `groupId`, an
identify's `traits.company` (an object with an `id`) and any call's `context.groupId`
name the account the call belongs to; its user becomes a member.

Two of the spec's events act the other way, for their own `context.groupId`: `Account
Removed User` ends the user's membership and `Account Deleted` deletes the account. Both
are remembered at their call's version (as a user's delete is), so that older calls
arriving later do not bring back what they ended, and newer ones do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from sextant.calls import AnyCall, Group, Identify, Track, identifier
from worker.rules import engage
from worker.rules.attributes import AttributeType, Entity
from worker.rules.mapping import account_columns, custom_account_traits, first_type_of
from worker.rules.records import Account, AccountMember, Membership, User

# How a batch types a trait: (call, entity, event, name, value, first type, whether to warn
# when it does not convert) -> (ok, typed).
Typer = Callable[[AnyCall, Entity, str, str, Any, AttributeType, bool], tuple[bool, Any]]

REMOVED_USER: Final = "Account Removed User"
DELETED: Final = "Account Deleted"


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


def ends_membership(call: AnyCall) -> bool:
    """Whether the call ends its user's membership of its `context.groupId` account."""
    return type(call) is Track and call.event == REMOVED_USER


def deletes_account(call: AnyCall) -> bool:
    """Whether the call deletes its `context.groupId` account."""
    return type(call) is Track and call.event == DELETED


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


class AccountBook:
    """The accounts a batch names, as its calls leave them, with the memberships, endings,
    audiences and deletes the calls make."""

    def __init__(
        self,
        accounts: dict[tuple[int, str], Account],
        tombstones: dict[tuple[int, str], str],
        typed: Typer,
    ) -> None:
        self.accounts = accounts  # every account the batch names, loaded (or created) and locked
        self.tombstones = tombstones  # (ws, group id) -> newest Account Deleted version
        self.new_tombstones: dict[tuple[int, str], str] = {}
        self.members: list[AccountMember] = []
        self.endings: list[AccountMember] = []  # memberships an Account Removed User ends
        self.audiences: list[Membership] = []
        self._typed = typed

    def join(self, call: AnyCall, user: User) -> Account | None:
        """The accounts the call names, with the user a member of each (or no longer one,
        for Account Removed User). Returns the account of `context.groupId`, which the
        call's event or page view belongs to."""
        named, belongs = self.facts(call)
        leaves = belongs if ends_membership(call) else None
        for account in dict.fromkeys(named):
            record = AccountMember(account, user, call.version)
            (self.endings if account is leaves else self.members).append(record)
        return belongs

    def facts(self, call: AnyCall) -> tuple[list[Account], Account | None]:
        """What a call says of accounts, applied: a group call's own, an identify's company,
        the `context.groupId` one. Returns the accounts the call's user joins (or leaves)
        and the one its event or page view belongs to. An account deleted after the call
        (by call time) takes nothing from it."""
        named = []
        if type(call) is Group:
            group_id = str(identifier(call.groupId))
            named.append(self._update(call, group_id, call.traits or {}))
        if (found := company(call)) is not None:
            company_id = str(identifier(found["id"]))
            named.append(self._update(call, company_id, company_traits(found)))
        belongs = self._context_account(call)
        named.append(belongs)
        return [a for a in named if a is not None], belongs

    def _context_account(self, call: AnyCall) -> Account | None:
        """The account of the call's `context.groupId`: named by Account Created, deleted
        by Account Deleted."""
        group_id = context_group(call)
        if group_id is None:
            return None
        if deletes_account(call):
            key = (call.workspace_id, group_id)
            if call.version > self.tombstones.get(key, ""):
                self.tombstones[key] = self.new_tombstones[key] = call.version
            return None
        account = self._account(call, group_id)
        name = created_name(call) if type(call) is Track else None
        if account is not None and name is not None:
            account.put("name", name, call.version)
        return account

    def _account(self, call: AnyCall, group_id: str) -> Account | None:
        """The account as the call finds it; None when it was deleted after the call."""
        key = (call.workspace_id, group_id)
        if self.tombstones.get(key, "") >= call.version:
            return None
        # The unit of work loaded (and created) every group the batch names.
        account = self.accounts[key]
        account.used = True
        account.touch(call.version)
        return account

    def _update(self, call: AnyCall, group_id: str, traits: dict[str, Any]) -> Account | None:
        account = self._account(call, group_id)
        version = call.version
        if account is not None:
            for column, value in account_columns(traits).items():
                account.put(column, value, version)
        # An Engage account audience: a boolean trait and a membership of the account.
        audience = engage.audience_trait(call) if type(call) is Group else None
        for name, value in custom_account_traits(traits).items():
            first_type = "boolean" if name == audience else first_type_of(name)
            # Typed even for a deleted account: definitions are the workspace's, whatever
            # order calls come in.
            ok, typed = self._typed(
                call, "account", "", name, value, first_type, account is not None
            )
            if account is None or not ok:
                continue
            account.put_trait(name, typed, version)
            if name == audience and isinstance(typed, bool):
                self.audiences.append(engage.membership(account, name, typed, call))
        return account

    def judge(self) -> tuple[list[Account], list[tuple[Account, str]]]:
        """The accounts an Account Deleted removes: altogether when no newer call named
        them, else what is older than the delete (a cut), as for a user's delete."""
        gone, cuts = [], []
        for key, version in self.new_tombstones.items():
            account = self.accounts[key]
            if account.touched < version:
                gone.append(account)
            else:
                account.forget_before(version)
                cuts.append((account, version))
        return gone, cuts
