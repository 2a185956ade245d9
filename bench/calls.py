"""The calls the benchmarks send: a realistic mix over a population of users."""

from __future__ import annotations

import functools
import itertools
import random
import uuid
from collections.abc import Callable
from typing import Any

USERS = 10_000
# The skewed population: one user sends this share of all calls (a load-test account, a
# bot, a shared "demo" login), the others follow Zipf's law, as real audiences do.
HEAVY_SHARE = 0.30
ZIPF_EXPONENT = 1.1

Population = Callable[[random.Random], str]


def uniform(rng: random.Random) -> str:
    return f"user-{rng.randrange(USERS)}"


@functools.cache
def _zipf_cumulative() -> list[float]:
    return list(itertools.accumulate(1 / r**ZIPF_EXPONENT for r in range(1, USERS)))


def skewed(rng: random.Random) -> str:
    if rng.random() < HEAVY_SHARE:
        return "user-0"
    rank = rng.choices(range(1, USERS), cum_weights=_zipf_cumulative())[0]
    return f"user-{rank}"


def realistic_call(rng: random.Random, n: int, population: Population = uniform) -> dict[str, Any]:
    """60% track, 20% identify, 15% page, 5% group, over 10,000 users."""
    user = population(rng)
    roll = rng.random()
    if roll < 0.60:
        call: dict[str, Any] = {
            "type": "track",
            "event": rng.choice(["Order Completed", "Product Viewed", "Signed Up", "Clicked"]),
            "properties": {"revenue": rng.randint(1, 500), "plan": rng.choice(["pro", "free"])},
        }
    elif roll < 0.80:
        call = {
            "type": "identify",
            "traits": {
                "email": f"{user}@initech.com",
                "plan": rng.choice(["pro", "free"]),
                "logins": rng.randint(1, 99),
            },
            "context": {
                "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) "
                "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
                "ip": "203.0.113.7",
                "locale": "en-US",
            },
        }
    elif roll < 0.95:
        call = {
            "type": "page",
            "name": rng.choice(["Home", "Pricing", "Docs"]),
            "properties": {"url": "https://initech.com/", "path": "/"},
        }
    else:
        call = {
            "type": "group",
            "groupId": f"g-{rng.randrange(500)}",
            "traits": {"name": "Initech", "employees": rng.randint(5, 5000)},
        }
    call["userId"] = user
    call["messageId"] = f"bench-{n}-{uuid.uuid4().hex[:8]}"
    call["timestamp"] = "2026-01-01T00:00:00.000Z"
    return call
