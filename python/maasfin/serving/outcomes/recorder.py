"""The service's side of the outcome store: recording, degraded mode, retention and gauges.

`OutcomeRecorder(target, retention_days, store_inputs, metrics)` opens the store when the worker
starts. If the database is down or locked, predictions keep being served: the failure is logged
as a warning, counted (`maasfin_outcome_store_errors`), and the store is reopened at a later
repository poll; outcome and performance requests get a 503 meanwhile. Nothing already committed
is touched.

Scores recorded are the predicted PD of each row: the single output of a one-column model, or
the second column (class 1) of a two-column one; models of other output widths are not recorded.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from maasfin.serving.errors import RequestError
from maasfin.serving.outcomes.store import OutcomeStore, StoreUnavailable, check_dependencies

__all__ = ["OutcomeRecorder", "default_scores"]

log = logging.getLogger("maasfin.serving")

GAUGES = ("n", "roc_auc", "gini", "ks", "brier", "ece", "observed_default_rate", "mean_pd")
RETRY_SECONDS = 5.0


def default_scores(y: np.ndarray) -> np.ndarray | None:
    """The PD per row of a model's outputs, or None when they are not one or two columns."""
    if y.ndim == 1:
        return y
    if y.ndim == 2 and y.shape[1] == 1:
        return y[:, 0]
    if y.ndim == 2 and y.shape[1] == 2:
        return y[:, 1]
    return None


class OutcomeRecorder:
    def __init__(self, target: str, metrics, retention_days: float | None = None, store_inputs: str = "hash"):
        check_dependencies(target)  # a missing extra fails at start-up, naming it
        self.target = target
        self.metrics = metrics
        self.retention_days = retention_days
        self.store_inputs = store_inputs
        self.store: OutcomeStore | None = None
        self.error: str | None = None
        self._lock = threading.Lock()
        self._last_try = 0.0
        self._last_purge = 0.0

    def open(self) -> bool:
        with self._lock:
            if self.store is not None:
                return True
            self._last_try = time.monotonic()
            try:
                self.store = OutcomeStore(self.target)
            except Exception as e:  # noqa: BLE001 - any driver error (down, locked, refused): degraded mode
                self.error = str(e)
                log.warning("outcome store %s unavailable (%s); predictions are served, not recorded", self.target, e)
                return False
            self.error = None
            return True

    def close(self) -> None:
        with self._lock:
            if self.store is not None:
                self.store.close()
                self.store = None

    def _store(self) -> OutcomeStore:
        if self.store is None and not self.open():
            raise RequestError(503, f"the outcome store is unavailable ({self.error})")
        return self.store

    def record(self, ex, scores: np.ndarray) -> None:
        """Stores one answered request's scores; never raises (degraded mode)."""
        if self.store is None and (time.monotonic() - self._last_try < RETRY_SECONDS or not self.open()):
            self.metrics.store_errors.inc()
            return
        digest = ex.input_sha256 if self.store_inputs == "hash" else None
        try:
            self.store.record(ex.request_id, ex.model, ex.version, scores, time.time(), digest)
        except StoreUnavailable as e:
            self.metrics.store_errors.inc()
            log.warning("%s; the prediction was served", e)

    def add(self, items: list[dict], now: float, authorize) -> int:
        try:
            return self._store().add_outcomes(items, now, authorize)
        except StoreUnavailable as e:
            self.metrics.store_errors.inc()
            raise RequestError(503, f"{e}; nothing was stored, retry later") from None

    def joined(self, model: str, version, since, until):
        try:
            return self._store().joined(model, version, since, until)
        except StoreUnavailable as e:
            self.metrics.store_errors.inc()
            raise RequestError(503, str(e)) from None

    def publish(self, model: str, overall: dict, per_version: dict) -> None:
        """Sets the realised-performance gauges of `model` (version "" for overall)."""
        for version, perf in [("", overall), *per_version.items()]:
            for name in GAUGES:
                value = perf[name]
                self.metrics.realised.labels(model, version, name).set(float("nan") if value is None else value)

    def poll(self) -> None:
        """Reopens a store that was down; applies retention once an hour."""
        if self.store is None:
            self.open()
            return
        if self.retention_days and time.monotonic() - self._last_purge > 3600:
            self._last_purge = time.monotonic()
            try:
                n = self.store.purge(time.time() - self.retention_days * 86400)
                if n:
                    log.info("outcome store: %d predictions past retention removed", n)
            except StoreUnavailable as e:
                log.warning("%s", e)
