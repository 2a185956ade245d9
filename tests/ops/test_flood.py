"""The runbook's "A customer floods us", from its make targets, against a real receiver."""

from __future__ import annotations

import aiohttp
import pytest

from ops.keys import CreatedKey
from tests.support.fixture_types import Run
from tests.support.helpers import basic_auth, eventually
from tests.support.sender import send

pytestmark = pytest.mark.slow


async def test_make_workspace_limit_holds_a_workspace_to_its_rate_and_lets_it_go(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey, make: Run
) -> None:
    ws = workspace.workspace
    batch = {"batch": [{"type": "track", "userId": "u1", "event": "E"}] * 50}

    async def status() -> int:
        answer = await send(
            http, f"{receiver}/v1/batch", batch, headers=basic_auth(workspace.api_key)
        )
        return answer.status

    shown_before = make("workspace-limit", f"WORKSPACE={ws}")
    limited = make("workspace-limit", f"WORKSPACE={ws}", "CALLS_PER_SECOND=10")

    async def refused() -> bool:
        return await status() == 429

    await eventually(refused, timeout=5)
    released = make("workspace-limit", f"WORKSPACE={ws}", "CALLS_PER_SECOND=0")

    async def accepted() -> bool:
        return await status() == 200

    await eventually(accepted, timeout=5)
    unknown = make("workspace-limit", "WORKSPACE=no-such-workspace", "CALLS_PER_SECOND=5")
    assert "the default (WORKSPACE_CALLS_PER_SECOND: unlimited)" in shown_before.stdout
    assert limited.returncode == 0
    assert "held to 10 calls/s from now on" in limited.stdout
    assert released.returncode == 0
    assert "the default" in released.stdout
    assert unknown.returncode != 0
    assert "no workspace named 'no-such-workspace'" in unknown.stderr
