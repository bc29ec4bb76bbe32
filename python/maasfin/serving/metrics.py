"""Prometheus metrics of one server (its own registry, so several apps can live in one process).

With several worker processes, set PROMETHEUS_MULTIPROC_DIR (`maasfin serve --workers N` does)
and /metrics aggregates every worker's values (prometheus-client's multiprocess mode).
Label values are bounded: `model` is a name from the repository (or "" for unknown names a client
made up) and `version` a loaded version number, so clients cannot grow the metric set.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,  # noqa: F401  (re-exported for the app)
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)


class ServingMetrics:
    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "maasfin_requests",
            "Prediction requests by protocol, model, version and HTTP status",
            ["protocol", "model", "version", "code"],
            registry=r,
        )
        self.errors = Counter(
            "maasfin_request_errors",
            "Prediction requests answered with an error status",
            ["protocol", "model", "version", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "maasfin_request_latency_seconds",
            "Prediction request latency, body read to response",
            ["protocol", "model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rows = Counter("maasfin_predicted_rows", "Rows predicted", ["model", "version"], registry=r)
        self.batch_rows = Histogram(
            "maasfin_batch_rows",
            "Rows per predict call (after merging requests)",
            ["model", "version"],
            buckets=ROW_BUCKETS,
            registry=r,
        )
        self.batch_requests = Histogram(
            "maasfin_batch_requests",
            "Requests merged into one predict call",
            ["model", "version"],
            buckets=ROW_BUCKETS,
            registry=r,
        )
        self.loads = Counter("maasfin_model_loads", "Model versions loaded", ["model"], registry=r)
        self.load_failures = Counter(
            "maasfin_model_load_failures", "Model versions that failed to load", ["model"], registry=r
        )
        self.versions = Gauge(
            "maasfin_model_versions_loaded",
            "Model versions loaded in this process",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.drift_psi = Gauge(
            "maasfin_drift_psi",
            'PSI of the recent live inputs (and of the score, feature="score") against the model\'s training reference',
            ["model", "version", "feature"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )  # workers share windows
        self.routed = Counter(
            "maasfin_routed_requests",
            "Answered prediction requests by model, version and route "
            "(default, version, label, split, sticky; shadow for shadow copies)",
            ["model", "version", "route"],
            registry=r,
        )
        self.shadow_latency = Histogram(
            "maasfin_shadow_latency_seconds",
            "From a routed request's answer to its shadow version's outputs (queue and predict, off the response path)",
            ["model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.store_errors = Counter(
            "maasfin_outcome_store_errors",
            "Outcome store operations that failed (predictions are served regardless)",
            registry=r,
        )
        self.realised = Gauge(
            "maasfin_realised_performance",
            'Realised performance over matured outcomes at the last performance query (version="" overall); '
            "metric: n, roc_auc, gini, ks, brier, ece, observed_default_rate, mean_pd",
            ["model", "version", "metric"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.shadow_dropped = Counter(
            "maasfin_shadow_dropped",
            "Shadow copies dropped because the shadow queue was full",
            ["model", "version"],
            registry=r,
        )

    def observe_request(self, protocol: str, model: str, version: str, code: int, seconds: float) -> None:
        c = str(code)
        self.requests.labels(protocol, model, version, c).inc()
        if code >= 400:
            self.errors.labels(protocol, model, version, c).inc()
        self.latency.labels(protocol, model, version).observe(seconds)

    def observe_batch(self, model: str, version: str, rows: int, requests: int) -> None:
        self.rows.labels(model, version).inc(rows)
        self.batch_rows.labels(model, version).observe(rows)
        self.batch_requests.labels(model, version).observe(requests)

    def remove_drift(self, model: str, version: str, feature: str) -> None:
        try:
            self.drift_psi.remove(model, version, feature)
        except KeyError:
            pass

    def _merged(self) -> CollectorRegistry:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return registry
        return self.registry

    def render(self) -> bytes:
        return generate_latest(self._merged())

    def samples(self, names: set[str]) -> list:
        """The samples (name, labels, value) of the named metrics, summed over workers."""
        return [s for family in self._merged().collect() for s in family.samples if s.name in names]
