"""How the long-running processes use Python's cyclic garbage collector."""

from __future__ import annotations

import gc

# Young objects are collected after this many allocations, not CPython's 700.
_YOUNG_THRESHOLD = 50_000


def tune_for_throughput() -> None:
    """Collect cycles in fewer, larger passes, and never walk what start-up created.

    A worker batch or a receiver request allocates tens of thousands of short-lived
    containers (decoded calls, rows, dicts). With CPython's default thresholds the
    collector runs many times per batch, and each older-generation pass walks every
    live object: py-spy put 13% of a worker's CPU in `gc_collect_main`. Cycles are still
    collected, so memory stays bounded (the soak in `make bench` watches it).
    """
    gc.freeze()  # modules, compiled patterns, settings: alive for the whole process
    gc.set_threshold(_YOUNG_THRESHOLD, 20, 20)
