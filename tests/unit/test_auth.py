"""ingest/auth.py without services: finding the key, the Origin check, the body signature."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from ingest.auth import check_origin, check_signature, key_from_headers
from sextant.errors import Forbidden


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        ({"Authorization": "Basic " + _b64("sx_key:")}, "sx_key"),
        ({"Authorization": "Basic " + _b64("sx_key")}, "sx_key"),
        ({"authorization": "basic " + _b64("sx_key:")}, "sx_key"),
        ({"Authorization": "  Basic   " + _b64("sx_key:") + " "}, "sx_key"),
        ({"Authorization": "Bearer sx_key"}, "sx_key"),
        ({"Authorization": "BEARER sx_key"}, "sx_key"),
        ({"X-Write-Key": "sx_key"}, "sx_key"),
        ({"x-write-key": " sx_key "}, "sx_key"),
        ({"Authorization": "Bearer sx_a", "X-Write-Key": "sx_b"}, "sx_a"),
        ({"Authorization": "Digest abc", "X-Write-Key": "sx_b"}, "sx_b"),
        ({"Authorization": "Basic !!!", "X-Write-Key": "sx_b"}, "sx_b"),
        ({"Authorization": "Basic " + _b64(":"), "X-Write-Key": "sx_b"}, "sx_b"),
        ({}, None),
        ({"Authorization": "Basic " + _b64(":")}, None),
        ({"Authorization": "Basic !!!"}, None),
        ({"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:").decode()}, None),
        ({"Authorization": "Bearer"}, None),
        ({"X-Write-Key": "   "}, None),
    ],
)
def test_key_from_headers(headers: dict[str, str], key: str | None) -> None:
    """The key is the first found in Basic (colon optional), Bearer or X-Write-Key."""
    assert key_from_headers(CIMultiDict(headers)) == key


_keys = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Z", "Cc")).filter(lambda c: c != ":"),
    min_size=1,
    max_size=60,
)


@given(key=_keys)
def test_every_header_form_gives_back_the_same_key(key: str) -> None:
    """For any key, each header form a Segment sender uses yields that key."""
    forms = [
        {"Authorization": "Basic " + _b64(key + ":")},
        {"Authorization": "Basic " + _b64(key)},
        {"Authorization": "Bearer " + key},
        {"X-Write-Key": key},
    ]
    for headers in forms:
        assert key_from_headers(CIMultiDict(headers)) == key


@pytest.mark.parametrize(
    "origin",
    [
        None,
        "https://shop.example",
        "https://SHOP.example",
        "http://www.shop.example:3000",
        "https://a.b.shop.example",
    ],
)
def test_trusted_origins_pass(origin: str | None) -> None:
    """No Origin (server-side senders), the domain itself or any subdomain passes."""
    check_origin(origin, ("shop.example",))


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "https://shop.example.evil.example",
        "https://evilshop.example",
        "https://shop.example@evil.example",
        "null",
        "not a url",
    ],
)
def test_untrusted_origins_are_forbidden(origin: str) -> None:
    """Any other Origin, including look-alikes, is forbidden."""
    with pytest.raises(Forbidden, match="trusted"):
        check_origin(origin, ("shop.example",))


def test_connector_without_trusted_domains_accepts_any_origin() -> None:
    """A connector that names no domains does not check Origin."""
    check_origin("https://anything.example", ())


_labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


@given(trusted=_labels, other=_labels, sub=_labels)
def test_origin_is_trusted_only_for_the_domain_and_its_subdomains(
    trusted: str, other: str, sub: str
) -> None:
    """An Origin passes exactly when its host is the trusted domain or ends in `.` + it."""
    domain = f"{trusted}.example"
    check_origin(f"https://{domain}", (domain,))
    check_origin(f"https://{sub}.{domain}", (domain,))
    if other != trusted:
        with pytest.raises(Forbidden):
            check_origin(f"https://{other}.example", (domain,))
        with pytest.raises(Forbidden):
            check_origin(f"https://{other}{trusted}.example", (domain,))


def _sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def test_signature_is_not_checked_without_a_secret() -> None:
    """A connector without a shared secret accepts any or no signature."""
    check_signature(b"{}", None, None)
    check_signature(b"{}", "garbage", None)


@pytest.mark.parametrize("signature", [None, "", "00", "sha1=" + _sign("s", b"{}")])
def test_missing_or_wrong_signature_is_forbidden(signature: str | None) -> None:
    """With a secret, a missing, wrong or differently formatted signature is forbidden."""
    with pytest.raises(Forbidden, match="X-Signature"):
        check_signature(b"{}", signature, "s")


@given(secret=st.text(min_size=1), body=st.binary(), other=st.binary())
def test_signature_matches_exactly_its_own_body(secret: str, body: bytes, other: bytes) -> None:
    """The HMAC-SHA1 of a body verifies that body, in either case, and no other body."""
    signature = _sign(secret, body)
    check_signature(body, signature, secret)
    check_signature(body, signature.upper(), secret)
    if other != body:
        with pytest.raises(Forbidden):
            check_signature(other, signature, secret)
