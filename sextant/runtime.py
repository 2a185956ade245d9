"""What every long-running process does the same way: its event loop, its stop signals and
how it uses Python's cyclic garbage collector."""

from __future__ import annotations

import asyncio
import ctypes
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


# How often a long-running process hands freed heap memory back to the system.
_TRIM_SECONDS = 20.0


async def release_freed_memory_forever() -> None:
    """Every few seconds, ask glibc to return the heap it keeps after frees.

    A worker's batches allocate and free tens of megabytes at a time; glibc keeps freed
    pages for reuse, and its heap fragments, so RSS crept up over a soak although Python's
    own allocations stayed flat (tracemalloc). `malloc_trim(0)` gives those pages back:
    in a 360 s soak at 5,000 calls/s the worker's RSS went 81 -> 102 MiB without it and
    81 -> 89 MiB with it. Elsewhere than glibc this does nothing.
    """
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return
    while True:
        await asyncio.sleep(_TRIM_SECONDS)
        trim(0)
