"""Rows to columns, the shape `unnest($1::T[], $2::U[], ...)` takes them in."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from worker.rules.records import Membership, Profile


def columnar(rows: Iterable[Sequence[Any]], width: int) -> list[list[Any]]:
    columns: list[list[Any]] = [[] for _ in range(width)]
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return columns


def pk(row: Profile) -> int:
    """A row's id; new rows are given theirs before anything that refers to them is written."""
    assert row.pk is not None, "ids are assigned before rows are written"
    return row.pk


def audience_rows(memberships: Iterable[tuple[Membership, Profile]]) -> list[list[Any]]:
    """(membership, its user or account) as the columns of an audience table's upsert."""
    rows = (
        (
            holder.workspace_id,
            pk(holder),
            m.audience_key,
            m.member,
            m.computation_class,
            m.computation_id,
            m.space_id,
            m.version,
            m.updated_at,
        )
        for m, holder in memberships
    )
    return columnar(rows, 9)
