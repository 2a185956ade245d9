"""The receiver's Prometheus metrics, in a registry of the app's own."""

from __future__ import annotations

import functools

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "sextant_http_requests",
            "HTTP requests by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.calls = Counter(
            "sextant_calls",
            "Calls received, by type and outcome (accepted, rejected, skipped).",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.broker_ack_seconds = Histogram(
            "sextant_broker_ack_seconds",
            "Time from produce to the broker's acknowledgement of a request's calls.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.limited = Counter(
            "sextant_calls_limited",
            "Calls refused with 429 because their workspace was over its intake rate.",
            ["workspace"],
            registry=self.registry,
        )
        self.receivers = Gauge(
            "sextant_receivers_sharing_rates",
            "Receivers this one divides each workspace's intake rate by.",
            registry=self.registry,
        )
        self.broker_ready = Gauge(
            "sextant_broker_ready", "1 while the broker answers.", registry=self.registry
        )

    # `labels()` takes a lock and builds a key on every call; the hot path asks for the same
    # few children over and over, so each is looked up once.
    @functools.cache  # noqa: B019 - one instance per app, living as long as the process
    def request_counter(self, route: str, status: int) -> Counter:
        return self.requests.labels(route, str(status))

    @functools.cache  # noqa: B019
    def call_counter(self, call_type: str, outcome: str) -> Counter:
        return self.calls.labels(call_type, outcome)

    @functools.cache  # noqa: B019
    def limited_counter(self, workspace_id: int) -> Counter:
        return self.limited.labels(str(workspace_id))
