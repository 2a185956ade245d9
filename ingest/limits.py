"""Each workspace's intake rate (contract 7.8): a token bucket per workspace in every
receiver, filled at the receiver's share of the rate.

The share is the rate divided by the number of receivers: `RECEIVER_REPLICAS` when set,
else the receivers that reported to Postgres in the last few seconds (`ingest.lists`), so
it follows an autoscaler. With the load balancer spreading requests evenly, the receivers
together admit the workspace's rate. Pure: the caller passes the clock and the share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# A workspace may send a second's worth of calls at once before it is held to its rate.
BURST_SECONDS = 1.0


@dataclass(slots=True)
class _Bucket:
    rate: float  # calls per second, this receiver's share
    tokens: float
    at: float  # when `tokens` was last brought up to date (monotonic seconds)


class IntakeLimiter:
    """Token buckets by workspace id."""

    def __init__(self) -> None:
        self._buckets: dict[int, _Bucket] = {}

    def take(self, workspace_id: int, calls: int, rate: float, now: float) -> float | None:
        """Take `calls` from the workspace's bucket, or say how long until it has room.

        `rate` is this receiver's share of the workspace's rate (0: unlimited). A request
        is admitted when the bucket holds its calls, or is full: a batch larger than a full
        bucket goes through and leaves the bucket in debt, so the rate holds on average
        without refusing a batch forever. Returns None when admitted, else seconds to wait.
        """
        if rate <= 0:
            self._buckets.pop(workspace_id, None)
            return None
        capacity = max(rate * BURST_SECONDS, 1.0)
        bucket = self._buckets.get(workspace_id)
        if bucket is None or bucket.rate != rate:  # new, or its rate changed: start full
            bucket = self._buckets[workspace_id] = _Bucket(rate, capacity, now)
        else:
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.at) * rate)
            bucket.at = now
        needed = min(float(calls), capacity)
        if bucket.tokens < needed:
            return (needed - bucket.tokens) / rate
        bucket.tokens -= calls
        return None


def retry_after_header(seconds: float) -> int:
    """Whole seconds for `Retry-After`: rounded up, at least 1."""
    return max(1, math.ceil(seconds))
