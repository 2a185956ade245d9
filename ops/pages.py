"""Lists newest first, a page at a time, with a cursor (the position after the last item
returned) rather than an offset, so rows added while a client pages do not shift or
repeat what it reads next."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import asyncpg
import msgspec

from sextant.db import Conn
from sextant.errors import InvalidInput

T = TypeVar("T")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int | None = None  # None: every item (the command line)
    cursor: str | None = None

    @classmethod
    def of(cls, limit: str | None, cursor: str | None) -> PageRequest:
        """From query parameters, checked."""
        if limit is None:
            return cls(DEFAULT_LIMIT, cursor or None)
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
            raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIMIT}")
        return cls(int(limit), cursor or None)


EVERYTHING = PageRequest()


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # list-specific figures


@dataclass(frozen=True, slots=True)
class Order:
    """The columns a list is sorted by, newest first: a time, then a unique tiebreak."""

    time: str
    key: str
    key_type: str = "text"


async def fetch_page(
    conn: Conn, select: str, args: list[Any], order: Order, page: PageRequest
) -> tuple[list[asyncpg.Record], str | None]:
    """`select` (ending in its WHERE clause) narrowed to the page, and the next cursor.

    The select must return the order's columns under the names `page_time` and `page_key`.
    Only our own column names are formatted into the SQL; every value is a parameter.
    """
    n = len(args)
    sql = select
    if page.cursor is not None:
        moment, key = _decode(page.cursor)
        if order.key_type != "text" and not key.isdigit():
            raise InvalidInput("cursor is not one this API gave")
        sql += (
            f" AND ({order.time}, {order.key}) < "
            f"(${n + 1}::timestamptz, ${n + 2}::{order.key_type})"
        )
        args = [*args, moment, key if order.key_type == "text" else int(key)]
    sql += f" ORDER BY {order.time} DESC, {order.key} DESC"
    if page.limit is not None:  # one more than asked: whether a next page exists
        sql += f" LIMIT ${len(args) + 1}"
        args = [*args, page.limit + 1]
    rows = await conn.fetch(sql, *args)
    if page.limit is None or len(rows) <= page.limit:
        return rows, None
    rows = rows[: page.limit]
    return rows, _encode(rows[-1]["page_time"], str(rows[-1]["page_key"]))


def _encode(moment: datetime, key: str) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode([moment, key])).decode()


def _decode(cursor: str) -> tuple[datetime, str]:
    try:
        moment, key = msgspec.json.decode(
            base64.urlsafe_b64decode(cursor.encode()), type=tuple[datetime, str]
        )
    except (binascii.Error, ValueError, msgspec.DecodeError) as e:
        raise InvalidInput("cursor is not one this API gave") from e
    return moment, key
