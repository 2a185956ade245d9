"""Values that are not identities: what a buggy client sends when it has no id. Such a
userId, anonymousId or previousId counts as absent, so that one client cannot fuse
thousands of strangers into one profile. Shared by the receiver, which applies the rule,
and the operator tools, which keep each workspace's own list in the same form."""

from __future__ import annotations

from typing import Final

BUILT_IN: Final = frozenset(
    {
        "",
        "null",
        "undefined",
        "none",
        "nil",
        "nan",
        "0",
        "-1",
        "anonymous",
        "guest",
        "unknown",
        "n/a",
        "id",
        "user_id",
        "userid",
        "email",
        "true",
        "false",
        "[object object]",
        "00000000-0000-0000-0000-000000000000",
    }
)


def comparable(value: str) -> str:
    """The form values are compared in: trimmed, case folded."""
    return value.strip().casefold()


def is_no_identity(value: str, blocked: frozenset[str] = frozenset()) -> bool:
    """Whether `value` is a built-in non-identity, or one of a workspace's own `blocked`
    values (kept in comparable form)."""
    kept = comparable(value)
    return kept in BUILT_IN or kept in blocked
