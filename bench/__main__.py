"""`make bench`: throughput, lag and memory, measured in one run on this machine.

Figures come in pairs taken in the same run (receiver vs a bare aiohttp+msgspec app on
the same bodies; end to end vs a batched-upsert ceiling on the same Postgres), because
a shared machine's absolute numbers drift; the ratios are the figures that count.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec

from bench.calls import USERS, realistic_call
from bench.isolation import bench_isolation
from bench.processes import process, rss_kib, service_env, wait_http, worker_processes
from bench.warnings_flood import run_flood
from ops import keys as admin
from ops.devstack import embedded_services, free_port
from ops.migrate import migrate
from sextant.db import create_pool
from sextant.settings import Settings

RECEIVER_SECONDS = float(os.environ.get("BENCH_RECEIVER_SECONDS", "10"))
E2E_CALLS = int(os.environ.get("BENCH_E2E_CALLS", "60000"))
E2E_WARMUP = 5000
STEADY_RATE = int(os.environ.get("BENCH_STEADY_RATE", "5000"))
STEADY_SECONDS = float(os.environ.get("BENCH_STEADY_SECONDS", "60"))
SOAK_RATE = int(os.environ.get("BENCH_SOAK_RATE", "5000"))
SOAK_SECONDS = float(os.environ.get("BENCH_SOAK_SECONDS", "300"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
# The bare app's stand-in for a broker acknowledgement, like the producer's 1 ms linger.
SIMULATED_ACK_MS = 1.0


# --- the bodies -------------------------------------------------------------------------


def batch_body(calls: list[dict[str, Any]]) -> bytes:
    return msgspec.json.encode({"batch": calls})


def _headers(key: str) -> dict[str, str]:
    return {
        "Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
        "Content-Type": "application/json",
    }


# --- 1. receiver vs a bare app ------------------------------------------------------------


def wrk(url: str, body: bytes, headers: dict[str, str], seconds: float) -> float:
    """Requests per second that wrk sustains against url with this body."""
    with tempfile.TemporaryDirectory() as tmp:
        body_path = Path(tmp) / "body.json"
        body_path.write_bytes(body)
        script = Path(tmp) / "post.lua"
        lines = [
            'wrk.method = "POST"',
            f'local f = io.open("{body_path}", "rb")',
            "wrk.body = f:read('*a')",
            "f:close()",
        ]
        lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
        script.write_text("\n".join(lines) + "\n")
        out = subprocess.run(
            ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{int(seconds)}s", "-s", str(script), url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        raise RuntimeError(f"wrk saw {non_2xx[1]} failed responses:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match[1])


def bench_receiver(settings: Settings, key: str) -> dict[str, float]:
    """The receiver, the bare app, and the bare app waiting for a simulated ack, in turn."""
    rng = random.Random(1)
    bodies = {
        "batch": (batch_body([realistic_call(rng, i) for i in range(100)]), 100),
        "single": (msgspec.json.encode(realistic_call(rng, 101)), 1),
    }
    auth = _headers(key)
    results: dict[str, float] = {}
    port = free_port()
    env = service_env(settings, PORT=str(port), HOST="127.0.0.1")
    with process(["-m", "ops", "serve"], env) as receiver:
        wait_http(f"http://127.0.0.1:{port}/readyz")
        results |= _calls_per_second("receiver", port, bodies, auth)
        results["receiver_peak_rss_mib"] = rss_kib(receiver.pid, "VmHWM") / 1024
    for name, extra in (("bare", []), ("bare_ack", [str(SIMULATED_ACK_MS)])):
        bare_port = free_port()
        with process(["-m", "bench.bare", str(bare_port), *extra], dict(os.environ)):
            wait_http(f"http://127.0.0.1:{bare_port}/healthz")
            results |= _calls_per_second(name, bare_port, bodies, auth)
    for shape in bodies:
        bare = results[f"bare_{shape}_calls_s"]
        results[f"receiver_{shape}_ratio"] = results[f"receiver_{shape}_calls_s"] / bare
        results[f"bare_ack_{shape}_ratio"] = results[f"bare_ack_{shape}_calls_s"] / bare
    return results


def _calls_per_second(
    name: str, port: int, bodies: dict[str, tuple[bytes, int]], auth: dict[str, str]
) -> dict[str, float]:
    """wrk against one server: batches, then single calls, after a short warm-up."""
    results = {}
    for shape, (body, calls) in bodies.items():
        url = f"http://127.0.0.1:{port}/v1/{'batch' if shape == 'batch' else 'track'}"
        wrk(url, body, auth, 2)
        results[f"{name}_{shape}_calls_s"] = calls * wrk(url, body, auth, RECEIVER_SECONDS)
    return results


# --- 2. end to end vs a batched-upsert ceiling --------------------------------------------


async def upsert_ceiling(settings: Settings, calls: int = 60_000) -> float:
    """Calls/s for the plainest batched write of users and events on the same Postgres."""
    rng = random.Random(2)
    conn = await asyncpg.connect(settings.require_database_url())
    try:
        ws = await admin.create_key(conn, f"ceiling-{uuid.uuid4().hex[:8]}")
        started = time.perf_counter()
        for start in range(0, calls, 1000):
            users = sorted({f"user-{rng.randrange(USERS)}" for _ in range(1000)})
            async with conn.transaction():
                rows = await conn.fetch(
                    """INSERT INTO users (workspace_id, user_id, email)
                       SELECT $1, u, u || '@initech.com' FROM unnest($2::text[]) u
                       ON CONFLICT (workspace_id, user_id) DO UPDATE SET email = EXCLUDED.email
                       RETURNING id""",
                    ws.workspace_id,
                    users,
                )
                pks = [r["id"] for r in rows]
                await conn.execute(
                    """INSERT INTO events (workspace_id, message_id, user_pk, name, properties,
                                           occurred_at, received_at)
                       SELECT $1, m, p, 'Clicked', '{"plan":"pro"}', now(), now()
                         FROM unnest($2::text[], $3::bigint[]) AS x (m, p)""",
                    ws.workspace_id,
                    [f"c{start + i}" for i in range(1000)],
                    [pks[i % len(pks)] for i in range(1000)],
                )
        return calls / (time.perf_counter() - started)
    finally:
        await conn.close()


async def send_all(url: str, key: str, bodies: list[bytes], concurrency: int = 8) -> None:
    headers = _headers(key)
    queue = list(reversed(bodies))
    async with aiohttp.ClientSession() as http:

        async def sender() -> None:
            while queue:
                body = queue.pop()
                async with http.post(url, data=body, headers=headers) as response:
                    if response.status != 200:
                        raise RuntimeError(f"{response.status}: {await response.text()}")

        await asyncio.gather(*(sender() for _ in range(concurrency)))


async def applied(pool: asyncpg.Pool, workspace_id: int) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM processed_messages WHERE workspace_id = $1", workspace_id
        )
    )


def _own_topics(settings: Settings, name: str) -> Settings:
    """Topics and a consumer group no other run shares."""
    topic = f"bench.{name}.{uuid.uuid4().hex[:6]}"
    return dataclasses.replace(
        settings,
        kafka_topic=topic,
        kafka_dlq_topic=f"{topic}.dlq",
        kafka_consumer_group=f"{topic}.g",
    )


async def _fresh_run(
    settings: Settings, name: str
) -> tuple[Settings, asyncpg.Pool, admin.CreatedKey]:
    """Topics and a consumer group of their own, a pool, and a workspace with a key."""
    run = _own_topics(settings, name)
    pool = await create_pool(run, max_size=2)
    async with pool.acquire() as conn:
        ws = await admin.create_key(conn, f"{name}-{uuid.uuid4().hex[:8]}")
    return run, pool, ws


async def bench_end_to_end(settings: Settings, workers: int) -> float:
    """Calls/s from the first request to the last call applied, with `workers` workers.

    A first round of E2E_WARMUP calls is sent and applied before the clock starts, so the
    figure is the sustained rate, not the time a fresh worker takes to open its
    connections and fill its caches.
    """
    run, pool, ws = await _fresh_run(settings, f"e2e{workers}")
    rng = random.Random(3)
    calls = [realistic_call(rng, i) for i in range(E2E_WARMUP + E2E_CALLS)]
    bodies = [batch_body(calls[i : i + 100]) for i in range(0, len(calls), 100)]
    warmup, timed = bodies[: E2E_WARMUP // 100], bodies[E2E_WARMUP // 100 :]
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/batch"
    with process(["-m", "ops", "serve"], service_env(run, PORT=str(port), HOST="127.0.0.1")):
        wait_http(f"http://127.0.0.1:{port}/readyz")
        with worker_processes(run, workers):
            await send_all(url, ws.api_key, warmup)
            await _until_applied(pool, ws.workspace_id, E2E_WARMUP)
            started = time.perf_counter()
            await send_all(url, ws.api_key, timed)
            await _until_applied(pool, ws.workspace_id, E2E_WARMUP + E2E_CALLS)
            seconds = time.perf_counter() - started
    await pool.close()
    return E2E_CALLS / seconds


async def _until_applied(pool: asyncpg.Pool, workspace_id: int, calls: int) -> None:
    while await applied(pool, workspace_id) < calls:
        await asyncio.sleep(0.05)


# --- 3 and 4. lag at a steady load, and memory over a soak -----------------------------------


async def bench_steady(settings: Settings, rate: int, seconds: float) -> dict[str, float]:
    """Send `rate` calls/s for `seconds` to one receiver and two workers: lag and memory."""
    run, pool, ws = await _fresh_run(settings, "steady")
    rng = random.Random(4)
    port = free_port()
    sent_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}
    results: dict[str, float] = {}
    with process(
        ["-m", "ops", "serve"], service_env(run, PORT=str(port), HOST="127.0.0.1")
    ) as receiver:
        wait_http(f"http://127.0.0.1:{port}/readyz")
        with worker_processes(run, 2) as workers:
            procs = {"receiver": receiver, "worker": workers[0]}
            stop = asyncio.Event()
            watcher = asyncio.create_task(_watch_applied(pool, ws.workspace_id, seen_at, stop))
            early: dict[str, int] = {}  # RSS once warmed up, and half-way: a leak keeps
            middle: dict[str, int] = {}  # growing in the second half, warm-up does not
            started = time.perf_counter()
            headers = _headers(ws.api_key)
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
                    await asyncio.sleep(
                        max(0.0, started + (n / per_tick) * tick - time.perf_counter())
                    )
                await asyncio.gather(*pending)
            for message_id in refused:  # answered 503: the sender retries those, not us
                sent_at.pop(message_id)
            results["steady_refused_calls"] = len(refused)
            deadline = time.perf_counter() + 60
            while len(seen_at) < len(sent_at) and time.perf_counter() < deadline:
                await asyncio.sleep(0.1)
            stop.set()
            await watcher
            late = {k: rss_kib(p.pid) for k, p in procs.items()}
            for k, p in procs.items():
                results[f"{k}_peak_rss_mib"] = rss_kib(p.pid, "VmHWM") / 1024
                results[f"{k}_soak_growth_pct"] = _growth(early, late, k)
                results[f"{k}_second_half_growth_pct"] = _growth(middle, late, k)
    await pool.close()
    lags = sorted(seen_at[m] - sent_at[m] for m in seen_at if m in sent_at)
    results["steady_offered_calls_s"] = len(sent_at) / seconds
    results["steady_applied_fraction"] = len(lags) / len(sent_at)
    results["lag_p50_s"] = lags[len(lags) // 2]
    results["lag_p99_s"] = lags[int(len(lags) * 0.99)]
    return results


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

    A row's processed_at is its transaction's start, and transactions commit out of that
    order, so each poll looks a second back and keeps the first sighting of each id.
    """
    while not stop.is_set():
        rows = await pool.fetch(
            """SELECT message_id FROM processed_messages
                WHERE workspace_id = $1 AND processed_at >= now() - interval '1 second'""",
            workspace_id,
        )
        now = time.perf_counter()
        for r in rows:
            seen_at.setdefault(r["message_id"], now)
        await asyncio.sleep(0.1)


# --- report -----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "postgres": "embedded" if not os.environ.get("DATABASE_URL") else "DATABASE_URL",
        "broker": "tansu (embedded)"
        if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        else "KAFKA_BOOTSTRAP_SERVERS",
    }


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


async def prepare(settings: Settings) -> str:
    conn = await asyncpg.connect(settings.require_database_url())
    try:
        await migrate(conn)
        return (await admin.create_key(conn, f"bench-{uuid.uuid4().hex[:8]}")).api_key
    finally:
        await conn.close()


@contextlib.contextmanager
def phase(base: Settings, name: str) -> Iterator[tuple[Settings, str]]:
    """Services for one phase, and a key: embedded ones are started afresh for each phase,
    so that what one phase left in the in-memory broker cannot slow the next."""
    with embedded_services(base) as services:
        settings = _own_topics(services, name)
        yield settings, asyncio.run(prepare(settings))


def main() -> int:
    """`make bench`; `python -m bench receiver|e2e|isolation|steady|soak|warnings` runs some
    phases (`warnings` only when asked)."""
    every = {"receiver", "e2e", "isolation", "steady", "soak"}
    only = set(sys.argv[1:]) or every
    if "receiver" in only and shutil.which("wrk") is None:
        print("bench: wrk is needed (make bench installs it with apt-get)", file=sys.stderr)
        return 2
    base = dataclasses.replace(Settings.from_env(), kafka_topic_partitions=12)
    results: dict[str, Any] = {"machine": machine()}
    if "receiver" in only:
        with phase(base, "receiver") as (settings, key):
            results |= bench_receiver(settings, key)
    if "e2e" in only:
        with phase(base, "e2e") as (settings, _):
            results["ceiling_upsert_calls_s"] = asyncio.run(upsert_ceiling(settings))
            results["e2e_1_worker_calls_s"] = asyncio.run(bench_end_to_end(settings, 1))
            results["e2e_2_workers_calls_s"] = asyncio.run(bench_end_to_end(settings, 2))
            results["e2e_1_worker_vs_ceiling"] = (
                results["e2e_1_worker_calls_s"] / results["ceiling_upsert_calls_s"]
            )
    if "warnings" in only:  # not in `make bench`: python -m bench warnings
        with phase(base, "warnings") as (settings, _):
            results |= run_flood(settings)
    if "isolation" in only:
        with phase(base, "isolation") as (settings, _):
            results |= asyncio.run(bench_isolation(settings))
    if "steady" in only:
        with phase(base, "steady") as (settings, _):
            steady = asyncio.run(bench_steady(settings, STEADY_RATE, STEADY_SECONDS))
        results |= {k: v for k, v in steady.items() if "growth" not in k}
    if "soak" in only:
        with phase(base, "soak") as (settings, _):
            soak = asyncio.run(bench_steady(settings, SOAK_RATE, SOAK_SECONDS))
        results |= {
            "soak_calls_s": soak["steady_offered_calls_s"],
            "soak_seconds": SOAK_SECONDS,
            "soak_refused_calls": soak["steady_refused_calls"],
            **{k: v for k, v in soak.items() if "rss" in k or "growth" in k},
        }
    if only == every:
        print_table(results)
    print(json.dumps(results, default=str))
    return 0


def print_table(r: dict[str, Any]) -> None:
    rows = [
        (
            "receiver, 100-call batches",
            f"{r['receiver_batch_calls_s']:,.0f} calls/s",
            f"bare app {r['bare_batch_calls_s']:,.0f}",
            f"{r['receiver_batch_ratio']:.2f}x",
        ),
        (
            "receiver, single calls",
            f"{r['receiver_single_calls_s']:,.0f} calls/s",
            f"bare app {r['bare_single_calls_s']:,.0f}",
            f"{r['receiver_single_ratio']:.2f}x",
        ),
        (
            f"bare app, {SIMULATED_ACK_MS:g} ms ack wait",
            f"{r['bare_ack_batch_calls_s']:,.0f} calls/s",
            f"singles {r['bare_ack_single_calls_s']:,.0f}",
            f"{r['bare_ack_batch_ratio']:.2f}x / {r['bare_ack_single_ratio']:.2f}x of bare",
        ),
        (
            "end to end, 1 worker",
            f"{r['e2e_1_worker_calls_s']:,.0f} calls/s",
            f"upsert ceiling {r['ceiling_upsert_calls_s']:,.0f}",
            f"{r['e2e_1_worker_vs_ceiling']:.2f}x",
        ),
        ("end to end, 2 workers", f"{r['e2e_2_workers_calls_s']:,.0f} calls/s", "", ""),
        (
            f"lag at {r['steady_offered_calls_s']:,.0f} calls/s",
            f"p50 {r['lag_p50_s'] * 1000:,.0f} ms",
            f"p99 {r['lag_p99_s'] * 1000:,.0f} ms",
            f"{r['steady_applied_fraction'] * 100:.1f}% applied, "
            f"{r['steady_refused_calls']} refused",
        ),
        (
            "batch, 12 long messageIds",
            f"{r['isolation_long_message_ids_batch_s'] * 1000:,.0f} ms",
            f"clean batch {r['isolation_clean_batch_s'] * 1000:,.0f} ms (2,412 calls)",
            f"{r['isolation_long_message_ids_ratio']:.2f}x",
        ),
        (
            "batch, 12 calls refused",
            f"{r['isolation_refused_calls_batch_s'] * 1000:,.0f} ms",
            "their workspace is gone",
            f"{r['isolation_refused_calls_ratio']:.2f}x",
        ),
        (
            "receiver memory",
            f"peak {r['receiver_peak_rss_mib']:,.0f} MiB",
            f"growth {r['receiver_soak_growth_pct']:+.1f}%, "
            f"{r['receiver_second_half_growth_pct']:+.1f}% in 2nd half",
            f"{r['soak_seconds']:.0f} s at {r['soak_calls_s']:,.0f} calls/s",
        ),
        (
            "worker memory",
            f"peak {r['worker_peak_rss_mib']:,.0f} MiB",
            f"growth {r['worker_soak_growth_pct']:+.1f}%, "
            f"{r['worker_second_half_growth_pct']:+.1f}% in 2nd half",
            "",
        ),
    ]
    m = r["machine"]
    print(
        f"\nSextant bench: {m['cores']} cores, {m['cpu']}, Python {m['python']}, "
        f"Postgres {m['postgres']}, broker {m['broker']}\n"
    )
    for row in rows:
        print(f"  {row[0]:<30}{row[1]:>22}   {row[2]:<36}{row[3]}")
    print()


if __name__ == "__main__":
    sys.exit(main())
