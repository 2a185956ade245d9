"""The receiver's own cost: its throughput and CPU time per call next to a bare aiohttp +
msgspec app and the design's floor (`bench.floor`) on the same bodies, and a neighbour's
latency while one workspace is held to its intake rate."""

from __future__ import annotations

import asyncio
import base64
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import msgspec

from bench.calls import realistic_call
from bench.cpu import cpu_seconds
from bench.processes import process, service_env, wait_http
from bench.wrk import WrkRun, wrk
from ops import keys as admin
from ops.devstack import free_port
from ops.workspaces import set_intake_rate
from sextant.settings import Settings

SECONDS = float(os.environ.get("BENCH_RECEIVER_SECONDS", "10"))
# Segment keeps many deliveries in flight: enough connections that the ack wait does not
# cap the figure (Little's law: 256 connections at 5 ms each allow 51,200 requests/s).
SINGLE_CONNECTIONS = int(os.environ.get("BENCH_SINGLE_CONNECTIONS", "256"))
BATCH_CONNECTIONS = int(os.environ.get("BENCH_BATCH_CONNECTIONS", "32"))
BATCH_CALLS = 100

# The neighbour test: one workspace floods at about FLOOD_OFFERED single calls/s against
# a rate of FLOOD_LIMIT, while another sends about NEIGHBOUR_RATE calls/s.
FLOOD_LIMIT = 500
FLOOD_DELAY_MS = 3.0
FLOODS = {"backing_off": 4, "heavy": 16}  # connections, each sending every 3 ms
NEIGHBOUR_CONNECTIONS, NEIGHBOUR_DELAY_MS = 4, 10.0
NEIGHBOUR_SECONDS = float(os.environ.get("BENCH_NEIGHBOUR_SECONDS", "15"))


def basic_auth(key: str) -> dict[str, str]:
    return {
        "Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
        "Content-Type": "application/json",
    }


def bodies() -> dict[str, tuple[str, bytes, int, int]]:
    """Shape -> (path, body, calls in it, connections)."""
    rng = random.Random(1)
    batch = msgspec.json.encode({"batch": [realistic_call(rng, i) for i in range(BATCH_CALLS)]})
    single = msgspec.json.encode(realistic_call(rng, BATCH_CALLS + 1))
    return {
        "single": ("/segment", single, 1, SINGLE_CONNECTIONS),
        "batch": ("/v1/batch", batch, BATCH_CALLS, BATCH_CONNECTIONS),
    }


def bench_receiver(settings: Settings, key: str) -> dict[str, float]:
    """Calls/s and CPU microseconds per call: the receiver, the bare app, the floor."""
    results: dict[str, float] = {}
    port = free_port()
    env = service_env(settings, PORT=str(port), HOST="127.0.0.1")
    with process(["-m", "ops", "serve"], env) as receiver:
        wait_http(f"http://127.0.0.1:{port}/readyz")
        results |= _measure("receiver", port, receiver.pid, basic_auth(key))
    bare_port = free_port()
    with process(["-m", "bench.bare", str(bare_port)], dict(os.environ)) as bare:
        wait_http(f"http://127.0.0.1:{bare_port}/healthz")
        results |= _measure("bare", bare_port, bare.pid, basic_auth(key))
    floor_port = free_port()
    with process(["-m", "bench.floor", str(floor_port)], env) as floor:
        wait_http(f"http://127.0.0.1:{floor_port}/healthz")
        results |= _measure("floor", floor_port, floor.pid, basic_auth(key))
    for shape in ("single", "batch"):
        bare_rate = results[f"bare_{shape}_calls_s"]
        results[f"receiver_{shape}_ratio"] = results[f"receiver_{shape}_calls_s"] / bare_rate
        results[f"floor_{shape}_ratio"] = results[f"floor_{shape}_calls_s"] / bare_rate
    return results


def _measure(name: str, port: int, pid: int, headers: dict[str, str]) -> dict[str, float]:
    results = {}
    for shape, (path, body, calls, connections) in bodies().items():
        url = f"http://127.0.0.1:{port}{path}"
        wrk(url, body, headers, 2, connections)
        cpu_before = cpu_seconds(pid)
        run = wrk(url, body, headers, SECONDS, connections)
        cpu = cpu_seconds(pid) - cpu_before
        results[f"{name}_{shape}_calls_s"] = calls * run.per_second
        results[f"{name}_{shape}_cpu_us_per_call"] = 1e6 * cpu / (calls * run.requests)
        results[f"{name}_{shape}_p99_ms"] = run.p99_ms
    return results


def bench_neighbour(settings: Settings) -> dict[str, float]:
    """A neighbour's p99 alone, then while another workspace floods past its rate: at
    about twice its rate (a sender backing off on 429, as Segment does) and as fast as 16
    connections go (one that does not)."""
    flooder, neighbour = asyncio.run(_two_workspaces(settings))
    body = msgspec.json.encode(realistic_call(random.Random(5), 0))
    port = free_port()
    env = service_env(settings, PORT=str(port), HOST="127.0.0.1", RECEIVER_REPLICAS="1")
    results: dict[str, float] = {"flood_limit_calls_s": FLOOD_LIMIT}
    with process(["-m", "ops", "serve"], env), ThreadPoolExecutor(1) as background:
        wait_http(f"http://127.0.0.1:{port}/readyz")
        url = f"http://127.0.0.1:{port}/segment"
        alone = _neighbour(url, body, neighbour)
        results["neighbour_alone_p99_ms"] = alone.p99_ms
        for level, connections in FLOODS.items():
            flood = background.submit(
                wrk, url, body, basic_auth(flooder), NEIGHBOUR_SECONDS + 4, connections,
                delay_ms=FLOOD_DELAY_MS, allow_refusals=True,
            )  # fmt: skip
            time.sleep(2)  # the flood is under way and held to its rate
            loaded = _neighbour(url, body, neighbour)
            flooded = flood.result()
            results |= {
                f"neighbour_{level}_flood_p99_ms": loaded.p99_ms,
                f"neighbour_{level}_flood_p99_ratio": loaded.p99_ms / alone.p99_ms,
                f"{level}_flood_offered_calls_s": flooded.per_second,
                f"{level}_flood_refused_fraction": flooded.non_2xx / flooded.requests,
            }
    return results


def _neighbour(url: str, body: bytes, key: str) -> WrkRun:
    return wrk(url, body, basic_auth(key), NEIGHBOUR_SECONDS, NEIGHBOUR_CONNECTIONS,
               delay_ms=NEIGHBOUR_DELAY_MS)  # fmt: skip


async def _two_workspaces(settings: Settings) -> tuple[str, str]:
    conn = await asyncpg.connect(settings.require_database_url())
    try:
        flooder = await admin.create_key(conn, "flooder")
        neighbour = await admin.create_key(conn, "neighbour")
        await set_intake_rate(conn, flooder.workspace, FLOOD_LIMIT)
        return flooder.api_key, neighbour.api_key
    finally:
        await conn.close()
