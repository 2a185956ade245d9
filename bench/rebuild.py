"""What a late call costs: a user with a long history, then a claim on its anonymous id
older than the one holding it, so that both users are rebuilt from the call journal."""

from __future__ import annotations

import time
import uuid

import msgspec

from ops import keys as admin
from sextant.calls import AnyCall, decode_call
from sextant.db import Conn, create_pool
from sextant.settings import Settings
from worker.unit_of_work import apply_calls

HISTORIES = (1_000, 5_000)


def _call(ws: admin.CreatedKey, n: int, **message: object) -> AnyCall:
    stamped = {
        "messageId": f"m{n}",
        "receivedAt": "2026-03-01T00:00:00.000Z",
        "sextant": {"workspaceId": ws.workspace_id, "connectorId": ws.connector_id},
        **message,
    }
    return decode_call(msgspec.json.encode(stamped))


async def bench_rebuild(settings: Settings) -> dict[str, float]:
    """Seconds to apply one late claim that rebuilds a user of each history length."""
    results: dict[str, float] = {}
    pool = await create_pool(settings, max_size=2)
    try:
        async with pool.acquire() as conn:
            for length in HISTORIES:
                results[f"rebuild_{length}_calls_s"] = await _one(conn, length)
    finally:
        await pool.close()
    return results


async def _one(conn: Conn, length: int) -> float:
    ws = await admin.create_key(conn, f"rebuild-{uuid.uuid4().hex[:8]}")
    history = [
        _call(ws, i, type="track", userId="u2", anonymousId="a1", event="Clicked",
              properties={"n": i}, timestamp=f"2026-03-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z")
        for i in range(length)
    ]  # fmt: skip
    for start in range(0, length, 1000):
        await apply_calls(conn, history[start : start + 1000])
    late = _call(ws, length, type="identify", userId="u1", anonymousId="a1",
                 timestamp="2026-03-01T09:00:00Z")  # fmt: skip
    started = time.perf_counter()
    outcome = await apply_calls(conn, [late])
    assert outcome.rebuilt == length + 1, outcome.rebuilt
    return time.perf_counter() - started
