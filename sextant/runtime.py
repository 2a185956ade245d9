"""What every long-running process does the same way: its event loop, its stop signals and
how it uses Python's cyclic garbage collector."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

# Young objects are collected after this many allocations, not CPython's 700.
_YOUNG_THRESHOLD = 50_000


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion on uvloop where it is built, else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is not built for every platform
        return asyncio.run(coro)
    return uvloop.run(coro)


async def wait_for_stop_signal() -> signal.Signals:
    """Return the first SIGINT or SIGTERM received; handlers are removed afterwards."""
    loop = asyncio.get_running_loop()
    received: asyncio.Future[signal.Signals] = loop.create_future()

    def on_signal(sig: signal.Signals) -> None:
        if not received.done():
            received.set_result(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        return await received
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def tune_collector_for_throughput() -> None:
    """Collect cycles in fewer, larger passes, and never walk what start-up created.

    A worker batch or a receiver request allocates tens of thousands of short-lived
    containers (decoded calls, rows, dicts). With CPython's default thresholds the
    collector runs many times per batch, and each older-generation pass walks every
    live object: py-spy put 13% of a worker's CPU in `gc_collect_main`. Cycles are still
    collected, so memory stays bounded (the soak in `make bench` watches it).
    """
    gc.freeze()  # modules, compiled patterns, settings: alive for the whole process
    gc.set_threshold(_YOUNG_THRESHOLD, 20, 20)
