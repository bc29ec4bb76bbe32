"""Live drift in the server: recent inputs and scores per served version, and their PSI.

Per served model version, a rolling window of the most recent input rows and their scores, and
the PSI of each feature and of the score against the reference the model recorded at fit
(`model.drift_reference`, see maasfin.explain.monitoring). `DriftMonitor` keeps the server's bookkeeping.

The prediction path only appends numpy blocks under a lock (`DriftWindow.append`: no copy, no
computation); PSI is computed when a report is asked for (GET .../drift) or when the drift gauges
are evaluated (a /metrics scrape, and every repository poll).

With several worker processes (`ServingConfig.drift_dir`, which `maasfin serve --workers N` sets),
each worker keeps its window in a memory-mapped file, `drift_dir/<model>/<version>/<pid>.win`, and
a report merges every worker's file of that version: the most recent `capacity` rows served by any
worker, by arrival time, whichever worker a client's report request reaches. This is the design of
prometheus-client's multiprocess mode (one mmap file per process, merged by the reader), for rows.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
import time
from collections import deque

import numpy as np

from maasfin import explain as explain_module
from maasfin.explain import monitoring
from maasfin.serving.audit import timestamp
from maasfin.serving.errors import RequestError

log = logging.getLogger("maasfin.serving")


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
            x, score, n = x[-self.capacity :], score[-self.capacity :], self.capacity
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
        x = np.concatenate([b[0] for b in blocks])[-self.capacity :]
        s = np.concatenate([b[1] for b in blocks])[-self.capacity :]
        return x, s

    def __len__(self) -> int:
        with self._lock:
            return min(self._rows, self.capacity)


_MAGIC = 0x3157_5446_5244_4D4D  # b"MMRDFTW1", little-endian
_HEADER = 4  # int64: magic, capacity, width, rows ever written


class _WindowFile:
    """The arrays of one window file: header, rows (capacity, width) float32, scores (capacity,)
    float32, arrival times (capacity,) float64, a ring indexed by `rows written % capacity`."""

    def __init__(self, path: str, capacity: int | None = None, width: int | None = None):
        mode = "r"
        if capacity is not None:  # create (or reset) this process's file
            size = 8 * _HEADER + capacity * (4 * width + 4 + 8)
            with open(path, "wb") as f:
                f.truncate(size)
            mode = "r+"
        raw = np.memmap(path, dtype=np.uint8, mode=mode)
        head = raw[: 8 * _HEADER].view(np.int64)
        if capacity is not None:
            head[:3] = (_MAGIC, capacity, width)
        elif raw.size < 8 * _HEADER or int(head[0]) != _MAGIC:
            raise ValueError(f"{path} is not a drift window file")
        cap, w = int(head[1]), int(head[2])
        if raw.size != 8 * _HEADER + cap * (4 * w + 4 + 8):
            raise ValueError(f"{path} has the wrong size")
        o = 8 * _HEADER
        self.head = head
        self.x = raw[o : o + 4 * cap * w].view(np.float32).reshape(cap, w)
        o += 4 * cap * w
        self.s = raw[o : o + 4 * cap].view(np.float32)
        self.t = raw[o + 4 * cap :].view(np.float64)
        self.capacity, self.width = cap, w

    def recent(self):
        """Copies of the valid rows, scores and times, oldest first."""
        total = int(self.head[3])
        if total <= self.capacity:
            return self.x[:total].copy(), self.s[:total].copy(), self.t[:total].copy()
        order = np.roll(np.arange(self.capacity), -(total % self.capacity))
        return self.x[order], self.s[order], self.t[order]


class SharedDriftWindow:
    """A DriftWindow of one worker process in a file of `directory`, whose snapshot() merges the
    windows of every worker in that directory (the same model version): the most recent
    `capacity` rows by arrival time. Appending writes rows into the memory map (no system call);
    a reader may see a row that a worker is overwriting at that moment half old, half new, both
    values it served, which does not matter to a PSI over thousands of rows."""

    def __init__(self, directory: str, capacity: int, width: int):
        self.capacity = int(capacity)
        self.width = int(width)
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, f"{os.getpid()}.win")
        self._file = _WindowFile(self.path, self.capacity, self.width)
        self._lock = threading.Lock()

    def append(self, x: np.ndarray, score: np.ndarray) -> None:
        n = x.shape[0]
        if n == 0:
            return
        cap = self.capacity
        if n > cap:
            x, score, n = x[-cap:], score[-cap:], cap
        now = time.time()
        f = self._file
        with self._lock:
            total = int(f.head[3])
            start = total % cap
            first = min(n, cap - start)
            f.x[start : start + first] = x[:first]
            f.s[start : start + first] = score[:first]
            f.t[start : start + first] = now
            if first < n:
                f.x[: n - first] = x[first:]
                f.s[: n - first] = score[first:]
                f.t[: n - first] = now
            f.head[3] = total + n  # after the rows: a reader never counts rows not yet written

    def snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        xs, ss, ts = [], [], []
        for path in sorted(glob.glob(os.path.join(self.directory, "*.win"))):
            try:
                f = self._file if path == self.path else _WindowFile(path)
            except (OSError, ValueError):  # a worker's file being created or removed
                continue
            if f.width != self.width:
                continue
            x, s, t = f.recent()
            xs.append(x), ss.append(s), ts.append(t)
        if not xs:
            return np.empty((0, self.width), np.float32), np.empty((0,), np.float32)
        t = np.concatenate(ts)
        order = np.argsort(t, kind="stable")[-self.capacity :]
        return np.concatenate(xs)[order], np.concatenate(ss)[order]

    def __len__(self) -> int:
        return int(self.snapshot()[0].shape[0])

    def close(self) -> None:
        """Removes this worker's file (the version was unloaded, or the worker stops)."""
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass


def _psi(reference, values):
    if reference is None or values.size == 0 or not np.isfinite(values).any():
        return None
    return monitoring.psi_from_reference(reference, values)


def _entry(psi):
    return {"psi": psi, "band": None if psi is None else monitoring.band(psi)}


def report(version, window: DriftWindow | None, capacity: int) -> dict:
    """The drift report of one served version (the JSON body of GET .../drift)."""
    model = version.model
    ref = model.drift_reference if model is not None else None
    if window is not None:
        x, s = window.snapshot()
        width = window.width
    else:
        x, s = None, None
        width = (
            len(ref["features"]) if ref is not None else sum(int(np.prod(t.shape)) for t in version.signature.inputs)
        )
        width = width if width <= 512 else 0  # no per-feature report for sequences and images
    names = explain_module.raw_feature_names(model) if model is not None and width else []
    features = []
    for j, name in enumerate(names):
        psi = None if ref is None or x is None else _psi(ref["features"][j], x[:, j].astype(np.float64))
        features.append({"feature": name, **_entry(psi)})
    score = None if ref is None or s is None else _psi(ref["score"], s.astype(np.float64))
    return {
        "model_name": version.name,
        "model_version": version.version,
        "reference": ref is not None,
        "window": {"rows": 0 if x is None else int(x.shape[0]), "capacity": capacity},
        "features": features,
        "score": _entry(score),
    }


class DriftMonitor:
    """The drift bookkeeping of a server: per served version, its window (kept in the version's
    attachments, made at its first prediction), its report, and the maasfin_drift_psi gauges and
    `drift_band` audit lines of `evaluate()`.

    `capacity` rows per window (0: no drift windows); `directory`: shared by the worker processes
    (SharedDriftWindow), else None."""

    def __init__(self, capacity: int, directory: str | None, repository, metrics):
        self.capacity = capacity
        self.directory = directory
        self.repository = repository
        self.metrics = metrics
        self._lock = threading.Lock()
        self._bands: dict = {}  # (name, version) -> {feature: band} of the last evaluation
        self._shared: list = []  # this worker's window files (directory), removed by close()

    def window(self, v):
        """The version's rolling window, or None (capacity 0, or no reference)."""
        w = v.attachments.get("drift")
        if w is None:
            model = v.model
            ref = model.drift_reference if model is not None else None
            usable = self.capacity > 0 and ref is not None
            with self._lock:
                w = v.attachments.get("drift")
                if w is None:
                    w = v.attachments["drift"] = self._new_window(v, len(ref["features"])) if usable else False
        return None if w is False else w  # (an empty window is falsy: it has a length)

    def _new_window(self, v, width: int):
        if self.directory is None:
            return DriftWindow(self.capacity, width)
        w = SharedDriftWindow(os.path.join(self.directory, v.name, str(v.version)), self.capacity, width)
        v.on_unload(lambda _v: w.close())
        self._shared.append(w)
        return w

    def observe(self, v, xs: list, y: np.ndarray) -> None:
        """Appends a successful prediction's rows and scores to the version's window (no computation)."""
        w = self.window(v)
        if w is None:
            return
        n = xs[0].shape[0]
        x = xs[0].reshape(n, -1) if len(xs) == 1 else np.concatenate([a.reshape(n, -1) for a in xs], axis=1)
        if x.shape[1] == w.width:
            w.append(x, y.reshape(n, -1)[:, 0])

    def report(self, v) -> dict:
        """GET /v1/models/{name}[/versions/{v}]/drift: PSI per feature and for the score."""
        return report(v, self.window(v), self.capacity)

    def forget(self, name: str, version) -> None:
        """Removes the gauges of a version that was unloaded."""
        with self._lock:
            bands = self._bands.pop((name, int(version)), {})
        for feature in bands:
            self.metrics.remove_drift(name, str(version), feature)

    def evaluate(self, audit=None) -> None:
        """Recomputes every loaded version's drift: sets the maasfin_drift_psi gauges and writes a
        `drift_band` line to `audit` (an AuditLog, or None) for each feature (or the score) whose
        band changed since the last evaluation. Runs on each /metrics scrape and repository poll."""
        if self.capacity == 0:
            return
        for v in [v for v in self.repository.loaded_versions() if not v.retired]:
            try:
                self._evaluate(v, audit)
            except Exception:  # noqa: BLE001 - monitoring must not break /metrics or the poller
                log.exception("drift evaluation of model '%s' version %d failed", v.name, v.version)

    def _evaluate(self, v, audit) -> None:
        try:
            lease = self.repository.lease(v.name, version=v.version)
        except RequestError:
            return
        with lease as v:
            w = self.window(v)
            if w is None:
                return
            rep = report(v, w, self.capacity)
        entries = [(f["feature"], f) for f in rep["features"]] + [("score", rep["score"])]
        changes = []
        with self._lock:
            bands = self._bands.setdefault((v.name, v.version), {})
            for feature, e in entries:
                if e["psi"] is None:
                    self.metrics.remove_drift(v.name, str(v.version), feature)
                else:
                    self.metrics.drift_psi.labels(v.name, str(v.version), feature).set(e["psi"])
                old = bands.get(feature)
                if e["band"] is not None and e["band"] != old:
                    changes.append((feature, old, e))
                if e["band"] is not None:
                    bands[feature] = e["band"]
        for feature, old, e in changes:
            log.info(
                "drift: model '%s' version %d %s moved from %s to %s (PSI %.4f)",
                v.name,
                v.version,
                feature,
                old,
                e["band"],
                e["psi"],
            )
        if audit is not None:
            for feature, old, e in changes:
                audit.write(
                    {
                        "time": timestamp(),
                        "event": "drift_band",
                        "model": v.name,
                        "version": v.version,
                        "feature": feature,
                        "from": old,
                        "to": e["band"],
                        "psi": e["psi"],
                        "window_rows": rep["window"]["rows"],
                    }
                )

    def close(self) -> None:
        """Removes this worker's window files (the server stops)."""
        for w in self._shared:
            w.close()
        self._shared.clear()
