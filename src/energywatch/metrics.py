"""Prometheus metrics of `energywatch watch` (the standard client library, served on --metrics-port)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from energywatch.models import RunSummary

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800)


class WatchMetrics:
    """The watcher's counters, gauges and histograms, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.polls = Counter("energywatch_polls", "Feed polls by result", ["result"], registry=r)
        self.not_modified_share = Gauge("energywatch_polls_not_modified_ratio",
                                        "Share of polls answered 304 Not Modified since the start", registry=r)
        self.items = Counter("energywatch_items_new", "Feed items not seen before", registry=r)
        self.documents = Counter("energywatch_documents_stored", "Documents stored", registry=r)
        self.extraction = Counter("energywatch_extraction_cpu_seconds",
                                  "CPU seconds the workers spent extracting pages", registry=r)
        self.runs_in_flight = Gauge("energywatch_runs_in_flight", "Polling runs under way", registry=r)
        self.feeds_waiting = Gauge("energywatch_feeds_waiting",
                                   "Feeds due but waiting for a free run (the queue)", registry=r)
        self.alerts = Counter("energywatch_alerts_sent", "Alerts delivered", registry=r)
        self.alert_latency = Histogram("energywatch_alert_latency_seconds",
                                       "From a document stored to its alert delivered", buckets=LATENCY_BUCKETS,
                                       registry=r)
        self.last_success = Gauge("energywatch_feed_last_success_timestamp_seconds",
                                  "When each feed last answered (Unix time)", ["feed"], registry=r)
        self._polled = 0
        self._not_modified = 0

    def run_done(self, summary: RunSummary) -> None:
        """Count one polling run."""
        failed = summary.feeds_failed
        not_modified = summary.feeds_not_modified
        unchanged = summary.feeds_unchanged_body
        ok = max(0, summary.feeds_polled - failed - not_modified - unchanged)
        for result, n in (("ok", ok), ("not-modified", not_modified), ("unchanged", unchanged),
                          ("failed", failed), ("busy", summary.feeds_busy)):
            if n:
                self.polls.labels(result).inc(n)
        self._polled += summary.feeds_polled
        self._not_modified += not_modified
        if self._polled:
            self.not_modified_share.set(self._not_modified / self._polled)
        self.items.inc(summary.items_new)
        self.documents.inc(summary.documents_stored)
        self.extraction.inc(summary.stage_seconds.get("extract", 0.0))

    def alerts_sent(self, latencies: Iterable[float]) -> None:
        """Count delivered alerts and their latency."""
        for seconds in latencies:
            self.alerts.inc()
            self.alert_latency.observe(seconds)

    def serve(self, port: int, address: str = "127.0.0.1") -> None:
        """Serve /metrics on a port (loopback unless told otherwise)."""
        start_http_server(port, addr=address, registry=self.registry)
