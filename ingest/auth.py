"""Who is calling: the API key from a request, the Origin check and the body signature."""

from __future__ import annotations

import binascii
import hashlib
import hmac
from base64 import b64decode
from collections.abc import Mapping
from urllib.parse import urlsplit

from sextant.errors import Forbidden


def key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The first key found in `Authorization: Basic|Bearer` or `X-Write-Key`.

    An Authorization header that holds no key (another scheme, unreadable Basic) is not
    a key found, so X-Write-Key is still looked at.
    """
    return _key_from_authorization(headers.get("Authorization", "")) or (
        headers.get("X-Write-Key", "").strip() or None
    )


def _key_from_authorization(authorization: str) -> str | None:
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = b64decode(credentials, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        # Segment sends base64(key + ":"); some clients leave the colon out.
        return decoded.partition(":")[0] or None
    if scheme.lower() == "bearer" and credentials:
        return credentials
    return None


def check_origin(origin: str | None, trusted_domains: tuple[str, ...]) -> None:
    """Browsers name their page in `Origin`; it must be a trusted domain or a subdomain of one.

    Server-side senders (Segment itself) send no Origin, and a connector without
    trusted domains accepts every origin.
    """
    if origin is None or not trusted_domains:
        return
    host = (urlsplit(origin).hostname or "").lower()
    if not any(host == d or host.endswith("." + d) for d in trusted_domains):
        raise Forbidden(f"Origin {origin!r} is not a trusted domain of this source")


def check_signature(body: bytes, signature: str | None, shared_secret: str | None) -> None:
    """`X-Signature` is the hex HMAC-SHA1 of the body as sent, keyed by the connector's secret."""
    if shared_secret is None:
        return
    if not signature:
        raise Forbidden("X-Signature is required for this source")
    expected = hmac.new(shared_secret.encode(), body, hashlib.sha1).hexdigest()
    if not hmac.compare_digest(expected, signature.strip().lower()):
        raise Forbidden("X-Signature does not match the body")
