"""`make bench`: throughput, lag and memory, measured in one run on this machine.

Figures come in pairs taken in the same run (the receiver vs a bare aiohttp+msgspec app on
the same bodies, with the design's floor between them; end to end vs a batched-upsert
ceiling on the same Postgres, with the CPU each process spent on a call; a neighbour's
latency alone vs while another workspace floods), because a shared machine's absolute
numbers drift; the ratios are the figures that count.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg

from bench.end_to_end import bench_end_to_end, own_topics, upsert_ceiling
from bench.isolation import bench_isolation
from bench.rebuild import bench_rebuild
from bench.receiver import bench_neighbour, bench_receiver
from bench.steady import bench_steady
from bench.warnings_flood import run_flood
from ops import keys as admin
from ops.devstack import embedded_services
from ops.migrate import migrate
from sextant.settings import Settings

STEADY_RATES = [int(r) for r in os.environ.get("BENCH_STEADY_RATES", "5000,10000").split(",")]
STEADY_SECONDS = float(os.environ.get("BENCH_STEADY_SECONDS", "60"))
SOAK_RATE = int(os.environ.get("BENCH_SOAK_RATE", "5000"))
SOAK_SECONDS = float(os.environ.get("BENCH_SOAK_SECONDS", "600"))


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
        settings = own_topics(services, name)
        yield settings, asyncio.run(prepare(settings))


def main() -> int:
    """`make bench`; `python -m bench receiver|neighbour|e2e|isolation|steady|soak|warnings|
    rebuild` runs some phases (`warnings` and `rebuild` only when asked)."""
    every = {"receiver", "neighbour", "e2e", "isolation", "steady", "soak"}
    only = set(sys.argv[1:]) or every
    if only & {"receiver", "neighbour"} and shutil.which("wrk") is None:
        print("bench: wrk is needed (make bench installs it with apt-get)", file=sys.stderr)
        return 2
    base = dataclasses.replace(Settings.from_env(), kafka_topic_partitions=12)
    results: dict[str, Any] = {"machine": machine()}
    if "receiver" in only:
        with phase(base, "receiver") as (settings, key):
            results |= bench_receiver(settings, key)
    if "neighbour" in only:
        with phase(base, "neighbour") as (settings, _):
            results |= bench_neighbour(settings)
    if "e2e" in only:
        with phase(base, "e2e") as (settings, _):
            results |= _end_to_end(settings)
    if "warnings" in only:  # not in `make bench`: python -m bench warnings
        with phase(base, "warnings") as (settings, _):
            results |= run_flood(settings)
    if "rebuild" in only:  # not in `make bench`: python -m bench rebuild
        with phase(base, "rebuild") as (settings, _):
            results |= asyncio.run(bench_rebuild(settings))
    if "isolation" in only:
        with phase(base, "isolation") as (settings, _):
            results |= asyncio.run(bench_isolation(settings))
    if "steady" in only:
        for rate in STEADY_RATES:
            with phase(base, "steady") as (settings, _):
                steady = asyncio.run(bench_steady(settings, rate, STEADY_SECONDS))
            results |= {
                f"steady_{rate}_{k.removeprefix('steady_')}": v
                for k, v in steady.items()
                if "growth" not in k and "rss" not in k and "samples" not in k
            }
    if "soak" in only:
        with phase(base, "soak") as (settings, _):
            soak = asyncio.run(bench_steady(settings, SOAK_RATE, SOAK_SECONDS))
        results |= {
            "soak_calls_s": soak["steady_offered_calls_s"],
            "soak_seconds": SOAK_SECONDS,
            "soak_refused_calls": soak["steady_refused_calls"],
            "soak_lag_p50_s": soak["lag_p50_s"],
            "soak_lag_p99_s": soak["lag_p99_s"],
            **{k: v for k, v in soak.items() if "rss" in k or "growth" in k},
        }
    if only == every:
        print_table(results)
    print(json.dumps(results, default=str))
    return 0


def _end_to_end(settings: Settings) -> dict[str, float]:
    ceiling = asyncio.run(upsert_ceiling(settings))
    results = {"ceiling_upsert_calls_s": ceiling.calls_s} | {
        f"ceiling_cpu_us_per_call_{kind}": us for kind, us in ceiling.cpu_us_per_call.items()
    }
    for population in ("uniform", "skewed"):
        for workers in (1, 2):
            run = asyncio.run(bench_end_to_end(settings, workers, population))
            results[f"e2e_{population}_{workers}w_calls_s"] = run.calls_s
            results |= {
                f"e2e_{population}_{workers}w_cpu_us_per_call_{kind}": us
                for kind, us in run.cpu_us_per_call.items()
            }
    uniform1 = results["e2e_uniform_1w_calls_s"]
    return results | {
        "e2e_1w_vs_ceiling": uniform1 / ceiling.calls_s,
        "e2e_2w_vs_1w": results["e2e_uniform_2w_calls_s"] / uniform1,
        "e2e_skewed_vs_uniform": results["e2e_skewed_1w_calls_s"] / uniform1,
        "e2e_skewed_2w_vs_1w": results["e2e_skewed_2w_calls_s"] / results["e2e_skewed_1w_calls_s"],
    }


def print_table(r: dict[str, Any]) -> None:
    rows = [("load", "Sextant", "yardstick", "ratio")]
    for shape, what in (("single", "single calls to /segment"), ("batch", "100-call /v1/batch")):
        rows.append((
            what,
            f"{r[f'receiver_{shape}_calls_s']:,.0f} calls/s",
            f"bare app {r[f'bare_{shape}_calls_s']:,.0f}",
            f"{r[f'receiver_{shape}_ratio']:.2f}x",
        ))  # fmt: skip
        rows.append((
            "  CPU per call",
            f"{r[f'receiver_{shape}_cpu_us_per_call']:,.1f} us",
            f"bare app {r[f'bare_{shape}_cpu_us_per_call']:,.1f} us",
            f"{r[f'receiver_{shape}_cpu_us_per_call'] / r[f'bare_{shape}_cpu_us_per_call']:.1f}x",
        ))  # fmt: skip
        rows.append((
            "  the design's floor",
            f"{r[f'floor_{shape}_calls_s']:,.0f} calls/s",
            f"{r[f'floor_{shape}_cpu_us_per_call']:,.1f} us a call",
            f"{r[f'floor_{shape}_ratio']:.2f}x",
        ))  # fmt: skip
    ceiling = r["ceiling_upsert_calls_s"]
    for population in ("uniform", "skewed"):
        for workers in (1, 2):
            rate = r[f"e2e_{population}_{workers}w_calls_s"]
            rows.append((
                f"end to end, {population}, {workers} worker{'s' * (workers > 1)}",
                f"{rate:,.0f} calls/s",
                f"upsert ceiling {ceiling:,.0f}",
                f"{rate / ceiling:.2f}x",
            ))  # fmt: skip
    rows.extend(_cpu_rows(r))
    rows.append(("  skewed / uniform, 1 worker", "", "", f"{r['e2e_skewed_vs_uniform']:.2f}x"))
    rows.append(("  2 workers / 1, uniform", "", "", f"{r['e2e_2w_vs_1w']:.2f}x"))
    for rate in STEADY_RATES:
        rows.append((
            f"lag at {r[f'steady_{rate}_offered_calls_s']:,.0f} calls/s",
            f"p50 {r[f'steady_{rate}_lag_p50_s'] * 1000:,.0f} ms",
            f"p99 {r[f'steady_{rate}_lag_p99_s'] * 1000:,.0f} ms",
            f"{r[f'steady_{rate}_applied_fraction'] * 100:.1f}% applied",
        ))  # fmt: skip
    for level in ("backing_off", "heavy"):
        rows.append((
            f"neighbour p99, {level.replace('_', ' ')} flood",
            f"{r[f'neighbour_{level}_flood_p99_ms']:.1f} ms",
            f"alone {r['neighbour_alone_p99_ms']:.1f} ms",
            f"{r[f'neighbour_{level}_flood_p99_ratio']:.2f}x",
        ))  # fmt: skip
        rows.append((
            "  the flood",
            f"{r[f'{level}_flood_offered_calls_s']:,.0f} calls/s",
            f"limit {r['flood_limit_calls_s']:,.0f}",
            f"{r[f'{level}_flood_refused_fraction'] * 100:.0f}% refused 429",
        ))  # fmt: skip
    rows.append((
        "batch, 12 long messageIds",
        f"{r['isolation_long_message_ids_batch_s'] * 1000:,.0f} ms",
        f"clean {r['isolation_clean_batch_s'] * 1000:,.0f} ms",
        f"{r['isolation_long_message_ids_ratio']:.2f}x",
    ))  # fmt: skip
    rows.append((
        "batch, 12 calls refused",
        f"{r['isolation_refused_calls_batch_s'] * 1000:,.0f} ms",
        f"clean {r['isolation_clean_batch_s'] * 1000:,.0f} ms",
        f"{r['isolation_refused_calls_ratio']:.2f}x",
    ))  # fmt: skip
    for process in ("receiver", "worker"):
        rows.append((
            f"{process} memory, {r['soak_seconds']:.0f} s soak",
            f"peak {r[f'{process}_peak_rss_mib']:,.0f} MiB",
            f"all {r[f'{process}_soak_growth_pct']:+.1f}%",
            f"{r[f'{process}_second_half_growth_pct']:+.1f}% in 2nd half",
        ))  # fmt: skip
    m = r["machine"]
    print(
        f"\nSextant bench: {m['cores']} cores, {m['cpu']}, Python {m['python']}, "
        f"Postgres {m['postgres']}, broker {m['broker']}\n"
    )
    for row in rows:
        print(f"  {row[0]:<38}{row[1]:>20}   {row[2]:<28}{row[3]}")
    print()


def _cpu_rows(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Where a call's CPU went, end to end with one worker (uniform users) and in the
    ceiling: on a machine of N cores, N CPU-seconds a second is all there is to share."""
    split = {}
    for name, prefix in (
        ("e2e", "e2e_uniform_1w_cpu_us_per_call_"),
        ("ceiling", "ceiling_cpu_us_per_call_"),
    ):
        split[name] = {k.removeprefix(prefix): v for k, v in r.items() if k.startswith(prefix)}
    e2e, ceiling = sum(split["e2e"].values()), sum(split["ceiling"].values())
    if not e2e or not ceiling:
        return []
    by_process = sorted(split["e2e"].items(), key=lambda kind_us: -kind_us[1])
    times = f"{e2e / ceiling:.1f}x"
    return [
        ("  CPU a call, 1 worker", f"{e2e:,.0f} us", f"ceiling {ceiling:,.0f}", times),
        ("    by process", "", ", ".join(f"{kind} {us:,.0f}" for kind, us in by_process), ""),
        (
            "    2 cores allow, if CPU-bound",
            f"{r['machine']['cores'] * 1e6 / e2e:,.0f} calls/s",
            f"ceiling {r['machine']['cores'] * 1e6 / ceiling:,.0f}",
            "",
        ),
    ]  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
