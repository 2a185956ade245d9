"""The intake rate's token bucket (contract 7.8), with the clock passed in."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ingest.limits import BURST_SECONDS, IntakeLimiter, retry_after_header

requests = st.lists(
    st.tuples(st.floats(0, 2, allow_nan=False), st.integers(1, 500)), min_size=1, max_size=200
)


@given(rate=st.floats(0.5, 5000), sent=requests)
def test_admitted_calls_never_exceed_the_rate(rate: float, sent: list[tuple[float, int]]) -> None:
    """Over any run, admitted calls are at most a full bucket, the rate times the time, and
    what one oversized batch may borrow."""
    limiter, now, admitted = IntakeLimiter(), 0.0, 0
    for pause, calls in sent:
        now += pause
        if limiter.take(1, calls, rate, now) is None:
            admitted += calls
    capacity = max(rate * BURST_SECONDS, 1.0)
    largest = max(calls for _, calls in sent)
    assert admitted <= capacity + rate * now + max(0.0, largest - capacity) + 1e-6


@given(rate=st.floats(0.5, 5000), sent=requests)
def test_a_refused_request_is_admitted_after_the_wait_it_was_given(
    rate: float, sent: list[tuple[float, int]]
) -> None:
    limiter, now = IntakeLimiter(), 0.0
    for pause, calls in sent:
        now += pause
        wait = limiter.take(1, calls, rate, now)
        if wait is not None:
            assert wait > 0
            assert limiter.take(1, calls, rate, now + wait + 1e-9) is None
            now += wait + 1e-9


def test_a_burst_gets_one_seconds_worth_then_waits() -> None:
    limiter = IntakeLimiter()
    admitted = [limiter.take(7, 1, 10, 0.0) for _ in range(15)]
    assert admitted.count(None) == 10
    assert admitted[10] is not None
    assert 0.09 < admitted[10] < 0.11
    assert limiter.take(7, 1, 10, 0.1) is None  # a tenth of a second buys one call


def test_a_batch_larger_than_the_bucket_passes_when_full_and_leaves_a_debt() -> None:
    limiter = IntakeLimiter()
    assert limiter.take(1, 500, 100, 0.0) is None
    wait = limiter.take(1, 1, 100, 0.0)
    assert wait is not None
    assert abs(wait - 4.01) < 1e-6


def test_workspaces_have_buckets_of_their_own_and_zero_is_unlimited() -> None:
    limiter = IntakeLimiter()
    assert limiter.take(1, 10, 10, 0.0) is None
    assert limiter.take(1, 1, 10, 0.0) is not None
    assert limiter.take(2, 10, 10, 0.0) is None
    assert all(limiter.take(3, 10_000, 0, 0.0) is None for _ in range(100))


def test_a_changed_rate_starts_a_full_bucket() -> None:
    limiter = IntakeLimiter()
    assert limiter.take(1, 10, 10, 0.0) is None
    assert limiter.take(1, 1, 10, 0.0) is not None
    assert limiter.take(1, 20, 20, 0.0) is None


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert [retry_after_header(s) for s in (0.001, 1.0, 1.2, 4.01)] == [1, 1, 2, 5]
