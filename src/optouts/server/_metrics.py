"""What the service counts, in Prometheus terms, on a registry of its own per app.

One registry per app (not prometheus-client's global one), so two apps in one process,
as tests make, never share or clash over counters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]


class Metrics:
    """The service's counters; ``registry`` is what ``GET /metrics`` renders."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.events_received = Counter(
            "optouts_webhook_events_received",
            "Webhook events accepted and recorded in the ledger, by vendor",
            ["vendor"],
            registry=self.registry,
        )
        self.events_refused = Counter(
            "optouts_webhook_requests_refused",
            "Webhook requests refused, by vendor and reason",
            ["vendor", "reason"],
            registry=self.registry,
        )
        self.pending = Gauge(
            "optouts_outbox_pending",
            "States the ledger holds that a target has not confirmed yet",
            ["target"],
            registry=self.registry,
        )
        self.sends = Counter(
            "optouts_outbox_sent",
            "States a target accepted (and the ledger confirmed)",
            ["target"],
            registry=self.registry,
        )
        self.send_failures = Counter(
            "optouts_outbox_failed",
            "States a target refused or could not be sent this time (they stay pending)",
            ["target"],
            registry=self.registry,
        )
        self.check_requests = Counter(
            "optouts_check_requests",
            "Check API requests answered",
            registry=self.registry,
        )
        self.check_latency = Histogram(
            "optouts_check_seconds",
            "Time to answer a check API request",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
