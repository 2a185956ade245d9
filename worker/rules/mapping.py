"""Which traits and context fields fill which columns of users and accounts."""

from __future__ import annotations

import functools
from typing import Any, Final

from ua_parser import parse_user_agent

from sextant.calls import Context
from worker.rules.attributes import AttributeType, to_number, to_string

# Known identify traits and the column each fills; `name` and `address` are handled apart.
_USER_TRAIT_COLUMNS: Final = {
    "email": "email",
    "first_name": "first_name",
    "firstName": "first_name",
    "last_name": "last_name",
    "lastName": "last_name",
    "phone": "phone",
    "gender": "gender",
}
_USER_KNOWN: Final = frozenset({*_USER_TRAIT_COLUMNS, "name", "address"})

_ACCOUNT_TRAIT_COLUMNS: Final = {
    n: n for n in ("name", "description", "email", "phone", "industry", "plan", "website")
}
_ACCOUNT_KNOWN: Final = frozenset({*_ACCOUNT_TRAIT_COLUMNS, "employees", "address"})

# Segment's reserved traits whose Spec type is not text, by their snake_case name: they are
# defined with that type when first seen. Both spellings are one attribute, in snake_case.
_RESERVED_TYPES: Final[dict[str, AttributeType]] = {
    "created_at": "datetime",
    "birthday": "datetime",
    "age": "number",
    "logins": "number",
}
_SPELLINGS: Final = {"createdAt": "created_at"}


def trait_name(key: str) -> str:
    """The attribute a trait key is: a reserved trait's camelCase spelling is its snake_case."""
    return _SPELLINGS.get(key, key)


def first_type_of(name: str) -> AttributeType:
    """The type a custom attribute is defined with when first seen."""
    return _RESERVED_TYPES.get(name, "string")


def user_columns(traits: dict[str, Any]) -> dict[str, str]:
    """Identify traits that map to `users` columns."""
    columns = {
        column: text
        for key, column in _USER_TRAIT_COLUMNS.items()
        if (text := _text(traits.get(key))) is not None
    }
    full_name = _text(traits.get("name"))
    if full_name and "first_name" not in columns and "last_name" not in columns:
        first, _, last = full_name.strip().partition(" ")
        columns["first_name"] = first
        if last.strip():
            columns["last_name"] = last.strip()
    columns.update(_address(traits.get("address")))
    return columns


def account_columns(traits: dict[str, Any]) -> dict[str, Any]:
    """Group traits that map to `accounts` columns; `employees` only when it is a number."""
    columns: dict[str, Any] = {
        column: text
        for key, column in _ACCOUNT_TRAIT_COLUMNS.items()
        if (text := _text(traits.get(key))) is not None
    }
    employees = to_number(traits.get("employees"))
    if employees is not None and abs(employees) < 2**63 and float(employees).is_integer():
        columns["employees"] = int(employees)
    columns.update(_address(traits.get("address")))
    return columns


def custom_user_traits(traits: dict[str, Any]) -> dict[str, Any]:
    return _custom(traits, _USER_KNOWN)


def custom_account_traits(traits: dict[str, Any]) -> dict[str, Any]:
    return _custom(traits, _ACCOUNT_KNOWN)


def _custom(traits: dict[str, Any], known: frozenset[str]) -> dict[str, Any]:
    """Traits that are not columns, by their attribute names."""
    return {trait_name(k): v for k, v in traits.items() if k not in known and v is not None}


def context_columns(context: Context | None) -> dict[str, str]:
    """What identify takes from `context`: agent, browser, os, device, screen, page, locale,
    ip and timezone."""
    if context is None:
        return {}
    columns: dict[str, str] = {}
    if ua := _text(context.userAgent):
        columns["user_agent"] = ua
        family, version = browser(ua)
        columns["browser_family"] = family
        if version:
            columns["browser_version"] = version
    if isinstance(context.os, dict) and (os_name := _text(context.os.get("name"))):
        os_version = _text(context.os.get("version"))
        columns["os"] = f"{os_name} {os_version}" if os_version else os_name
    if isinstance(context.device, dict):
        device_name = _text(context.device.get("name")) or _text(context.device.get("model"))
        if device_name:
            columns["device_name"] = device_name
        if device_type := _text(context.device.get("type")):
            columns["device_type"] = device_type
    if isinstance(context.screen, dict):
        width, height = context.screen.get("width"), context.screen.get("height")
        if isinstance(width, int) and isinstance(height, int):
            columns["resolution"] = f"{width}x{height}"
    if isinstance(context.page, dict) and (url := _text(context.page.get("url"))):
        columns["current_url"] = url
    for column, value in (
        ("language", context.locale),
        ("ip_address", context.ip),
        ("timezone", context.timezone),
    ):
        if text := _text(value):
            columns[column] = text
    return columns


@functools.lru_cache(maxsize=4096)
def browser(user_agent: str) -> tuple[str, str | None]:
    """Browser family and major.minor version; the same few agents repeat, so cache them."""
    parsed = parse_user_agent(user_agent)
    if parsed is None:
        return "Other", None
    version = ".".join(p for p in (parsed.major, parsed.minor) if p) or None
    return parsed.family, version


def warm_up() -> None:
    """ua-parser compiles its patterns on first use, a few hundred milliseconds: pay that
    before the first batch rather than inside its transaction."""
    parse_user_agent("Mozilla/5.0")


def _text(value: Any) -> str | None:
    """Scalars as text for text columns; objects and lists do not fit one."""
    if value is None or isinstance(value, dict | list):
        return None
    text = to_string(value).replace("\x00", "")
    return text or None


def _address(address: Any) -> dict[str, str]:
    if not isinstance(address, dict):
        return {}
    columns = {}
    if country := _text(address.get("country")):
        columns["country"] = country
    if region := _text(address.get("state")) or _text(address.get("region")):
        columns["region"] = region
    if city := _text(address.get("city")):
        columns["city"] = city
    return columns
