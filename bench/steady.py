"""Lag at a fixed offered rate (when each call becomes visible in Postgres after it was
sent), and the processes' memory over a soak."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import aiohttp
import asyncpg

from bench.calls import realistic_call
from bench.end_to_end import batch_body, fresh_run
from bench.processes import process, rss_kib, service_env, wait_http, worker_processes
from bench.receiver import basic_auth
from ops.devstack import free_port
from sextant.settings import Settings


async def bench_steady(settings: Settings, rate: int, seconds: float) -> dict[str, Any]:
    """Send `rate` calls/s for `seconds` to one receiver and two workers: lag and memory."""
    run, pool, ws = await fresh_run(settings, "steady")
    rng = random.Random(4)
    port = free_port()
    sent_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}
    results: dict[str, Any] = {}
    with process(
        ["-m", "ops", "serve"], service_env(run, PORT=str(port), HOST="127.0.0.1")
    ) as receiver:
        wait_http(f"http://127.0.0.1:{port}/readyz")
        with worker_processes(run, 2) as workers:
            procs = {"receiver": receiver, "worker": workers[0]}
            stop = asyncio.Event()
            watcher = asyncio.create_task(_watch_applied(pool, ws.workspace_id, seen_at, stop))
            samples: list[int] = []
            early: dict[str, int] = {}  # RSS once warmed up, and half-way: a leak keeps
            middle: dict[str, int] = {}  # growing in the second half, warm-up does not
            started = time.perf_counter()
            headers = basic_auth(ws.api_key)
            tick, per_tick, n = 0.02, max(1, rate // 50), 0
            refused: list[str] = []
            async with aiohttp.ClientSession() as http:
                pending: set[asyncio.Task[None]] = set()
                while (elapsed := time.perf_counter() - started) < seconds:
                    calls = [realistic_call(rng, n + i) for i in range(per_tick)]
                    n += per_tick
                    now = time.perf_counter()
                    for c in calls:
                        sent_at[c["messageId"]] = now
                    task = asyncio.create_task(_post(http, port, calls, headers, refused))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                    if not early and elapsed > min(60.0, seconds / 5):
                        early = {k: rss_kib(p.pid) for k, p in procs.items()}
                    if not middle and elapsed > seconds / 2:
                        middle = {k: rss_kib(p.pid) for k, p in procs.items()}
                    if elapsed > len(samples) * _SAMPLE_SECONDS:  # the curve, to tell a
                        samples.append(rss_kib(workers[0].pid) // 1024)  # leak from a plateau
                    await asyncio.sleep(
                        max(0.0, started + (n / per_tick) * tick - time.perf_counter())
                    )
                await asyncio.gather(*pending)
            # Memory under the steady load, before the drain below changes the regime.
            late = {k: rss_kib(p.pid) for k, p in procs.items()}
            for message_id in refused:  # answered 503: the sender retries those, not us
                sent_at.pop(message_id)
            results["steady_refused_calls"] = len(refused)
            deadline = time.perf_counter() + 60
            while len(seen_at) < len(sent_at) and time.perf_counter() < deadline:
                await asyncio.sleep(0.1)
            stop.set()
            await watcher
            for k, p in procs.items():
                results[f"{k}_peak_rss_mib"] = rss_kib(p.pid, "VmHWM") / 1024
                results[f"{k}_soak_growth_pct"] = _growth(early, late, k)
                results[f"{k}_second_half_growth_pct"] = _growth(middle, late, k)
            results["worker_rss_mib_every_30_s"] = samples
    await pool.close()
    lags = sorted(seen_at[m] - sent_at[m] for m in seen_at if m in sent_at)
    results["steady_offered_calls_s"] = len(sent_at) / seconds
    results["steady_applied_fraction"] = len(lags) / len(sent_at)
    results["lag_p50_s"] = lags[len(lags) // 2]
    results["lag_p99_s"] = lags[int(len(lags) * 0.99)]
    return results


_SAMPLE_SECONDS = 30


def _growth(before: dict[str, int], after: dict[str, int], name: str) -> float:
    return 100 * (after[name] / before[name] - 1) if before else 0.0


async def _post(
    http: aiohttp.ClientSession,
    port: int,
    calls: list[dict[str, Any]],
    headers: dict[str, str],
    refused: list[str],
) -> None:
    """Send one body; note its calls as refused unless answered 200."""
    body = batch_body(calls)
    async with http.post(f"http://127.0.0.1:{port}/v1/batch", data=body, headers=headers) as r:
        await r.read()
        if r.status != 200:
            refused.extend(c["messageId"] for c in calls)


async def _watch_applied(
    pool: asyncpg.Pool, workspace_id: int, seen_at: dict[str, float], stop: asyncio.Event
) -> None:
    """Note when each messageId becomes visible (committed) in Postgres, to within 0.1 s.

    A row's applied_at is its transaction's start, and transactions commit out of that
    order, so each poll looks a second back and keeps the first sighting of each id.
    """
    while not stop.is_set():
        rows = await pool.fetch(
            # The time first (the journal's index on it), then the workspace: the
            # planner, with no statistics yet on a table this young, may otherwise
            # combine both indexes and read every key of the workspace each poll.
            """WITH recent AS MATERIALIZED (
                    SELECT workspace_id, message_id FROM call_journal
                     WHERE applied_at >= now() - interval '1 second')
               SELECT message_id FROM recent WHERE workspace_id = $1""",
            workspace_id,
        )
        now = time.perf_counter()
        for r in rows:
            seen_at.setdefault(r["message_id"], now)
        await asyncio.sleep(0.1)
