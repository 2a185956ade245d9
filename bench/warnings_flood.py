"""`python -m bench warnings`: one workspace sends 100,000 calls that each cause an ingestion
warning, through a receiver and two workers; the rows kept stay within 100 per kind and
minute, and every warning is counted.

BENCH_WARNING_CALLS changes the number of calls.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import aiohttp
import msgspec

from bench.processes import process, service_env, wait_http, worker_processes
from ops.devstack import free_port
from ops.keys import create_key
from sextant.db import connection
from sextant.settings import Settings

CALLS = int(os.environ.get("BENCH_WARNING_CALLS", "100000"))
PER_BATCH = 500


async def flood(settings: Settings, receiver: str) -> dict[str, float]:
    """Send CALLS calls whose traits are a string (left out, `field_dropped`), wait until
    the workers applied them all, and read back rows and tallies."""
    async with connection(settings) as conn:
        ws = await create_key(conn, f"flood-{uuid.uuid4().hex[:8]}")
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {ws.api_key}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(headers=headers) as http:
        for start in range(0, CALLS, PER_BATCH):
            batch = [
                {
                    "type": "identify",
                    "userId": f"u{i % 5000}",
                    "messageId": f"flood-{i}",
                    "traits": "x",
                }
                for i in range(start, min(start + PER_BATCH, CALLS))
            ]
            async with http.post(
                f"{receiver}/v1/batch", data=msgspec.json.encode({"batch": batch})
            ) as r:
                assert r.status == 200, await r.text()
    sent = time.perf_counter() - started
    async with connection(settings) as conn:
        while True:
            seen = await conn.fetchval(
                "SELECT coalesce(sum(seen), 0) FROM ingestion_warning_tallies "
                "WHERE workspace_id = $1",
                ws.workspace_id,
            )
            if seen >= CALLS:
                break
            await asyncio.sleep(0.5)
        applied = time.perf_counter() - started
        rows = await conn.fetchval(
            "SELECT count(*) FROM ingestion_warnings WHERE workspace_id = $1", ws.workspace_id
        )
        minutes = await conn.fetchval(
            "SELECT count(*) FROM ingestion_warning_tallies WHERE workspace_id = $1",
            ws.workspace_id,
        )
    assert rows <= 100 * minutes, (rows, minutes)
    return {
        "warnings_calls": CALLS,
        "warnings_counted": int(seen),
        "warnings_rows_kept": int(rows),
        "warnings_minutes": int(minutes),
        "warnings_send_s": sent,
        "warnings_applied_s": applied,
    }


def run_flood(settings: Settings) -> dict[str, float]:
    port = free_port()
    with (
        process(["-m", "ops", "serve"], service_env(settings, PORT=str(port), HOST="127.0.0.1")),
        worker_processes(settings, 2),
    ):
        wait_http(f"http://127.0.0.1:{port}/readyz")
        return asyncio.run(flood(settings, f"http://127.0.0.1:{port}"))
