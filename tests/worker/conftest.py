"""Worker test fixtures: calls applied directly, in one batch, as a worker applies them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from ops.keys import CreatedKey
from tests.support.calls import call
from worker.unit_of_work import Outcome, apply_calls

Apply = Callable[..., Awaitable[Outcome]]


@pytest.fixture
def apply(pool: asyncpg.Pool, workspace: CreatedKey) -> Apply:
    """Apply calls (given as message dicts) directly, in one batch, as a worker would."""

    async def run(*messages: dict[str, Any]) -> Outcome:
        calls = [call(workspace, **m) for m in messages]
        async with pool.acquire() as conn:
            return await apply_calls(conn, calls)

    return run
