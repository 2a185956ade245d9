"""API keys as both sides see them: operators make them, receivers check them."""

from __future__ import annotations

import hashlib
import secrets
from typing import Final

KEY_PREFIX_LENGTH: Final = 12  # "sx_" and 9 random characters: names a key, cannot use it


def new_key() -> str:
    return "sx_" + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """Keys are 190 random bits, so one fast hash is enough to store them safely."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    return key[:KEY_PREFIX_LENGTH]
