"""Live drift in the server: per served model version, a rolling window of the most recent input
rows and their scores, and the PSI of each feature and of the score against the reference the
model recorded at fit (`explanations.drift_reference`, see maasfin.monitoring).

The prediction path only appends numpy blocks under a lock (`DriftWindow.append`: no copy, no
computation); PSI is computed when a report is asked for (GET .../drift) or when the drift gauges
are evaluated (a /metrics scrape, and every repository poll).
"""
from __future__ import annotations

import threading
from collections import deque

import numpy as np

from maasfin import monitoring


class DriftWindow:
    """The last `capacity` rows (flattened inputs) and scores of one model version."""

    def __init__(self, capacity: int, width: int):
        self.capacity = int(capacity)
        self.width = int(width)
        self._blocks: deque = deque()
        self._rows = 0
        self._lock = threading.Lock()

    def append(self, x: np.ndarray, score: np.ndarray) -> None:
        n = x.shape[0]
        if n == 0:
            return
        if n > self.capacity:
            x, score, n = x[-self.capacity:], score[-self.capacity:], self.capacity
        with self._lock:
            self._blocks.append((x, score))
            self._rows += n
            while self._rows - self._blocks[0][0].shape[0] >= self.capacity:
                self._rows -= self._blocks.popleft()[0].shape[0]

    def snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, width) inputs and (rows,) scores, the most recent `capacity` rows at most."""
        with self._lock:
            blocks = list(self._blocks)
        if not blocks:
            return np.empty((0, self.width), np.float32), np.empty((0,), np.float32)
        x = np.concatenate([b[0] for b in blocks])[-self.capacity:]
        s = np.concatenate([b[1] for b in blocks])[-self.capacity:]
        return x, s

    def __len__(self) -> int:
        with self._lock:
            return min(self._rows, self.capacity)


def _psi(reference, values):
    if reference is None or values.size == 0 or not np.isfinite(values).any():
        return None
    return monitoring.psi_from_reference(reference, values)


def _entry(psi):
    return {"psi": psi, "band": None if psi is None else monitoring.band(psi)}


def report(version, window: DriftWindow | None, capacity: int) -> dict:
    """The drift report of one served version (the JSON body of GET .../drift)."""
    from maasfin import explain as explain_module
    model = version.model
    ref = getattr(model, "_drift_reference", None) if model is not None else None
    if window is not None:
        x, s = window.snapshot()
        width = window.width
    else:
        x, s = None, None
        width = len(ref["features"]) if ref is not None else \
            sum(int(np.prod(t.shape)) for t in version.signature.inputs)
        width = width if width <= 512 else 0  # no per-feature report for sequences and images
    names = explain_module.raw_feature_names(model) if model is not None and width else []
    features = []
    for j, name in enumerate(names):
        psi = None if ref is None or x is None else _psi(ref["features"][j], x[:, j].astype(np.float64))
        features.append({"feature": name, **_entry(psi)})
    score = None if ref is None or s is None else _psi(ref["score"], s.astype(np.float64))
    return {"model_name": version.name, "model_version": version.version,
            "reference": ref is not None,
            "window": {"rows": 0 if x is None else int(x.shape[0]), "capacity": capacity},
            "features": features, "score": _entry(score)}
