"""Rows to columns, the shape `unnest($1::T[], $2::U[], ...)` takes them in."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def columnar(rows: Iterable[Sequence[Any]], width: int) -> list[list[Any]]:
    columns: list[list[Any]] = [[] for _ in range(width)]
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return columns
