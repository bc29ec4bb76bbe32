"""The web console: GET /ui (a page and its script and style, served by the package) and GET /v1/console/models.

The page asks for an API key and sends it as a bearer header on every call it makes (never in a
URL); it lists the models the key may see with their versions, labels and load state, live
request rate, latency percentiles and error rate (from /v1/console/models, polled), drift per
feature as charts (/v1/models/{name}/drift), the stored validation report (the model card as
HTML) and an applicant form built from the model's features that scores a record through
POST /v1/explain and shows its reason codes. Nothing is fetched from elsewhere.
"""

from __future__ import annotations

import collections
import threading
import time
import weakref
from importlib import resources

from maasfin.serving.endpoints import Endpoint
from maasfin.serving.exchange import Reply, json_reply

__all__ = ["ENDPOINTS", "models_status", "quantile_from_buckets", "LatencyWindow", "WINDOW_SECONDS"]

#: The console's latency percentiles cover the requests of the last WINDOW_SECONDS.
WINDOW_SECONDS = 60.0

ASSETS = {
    "/ui": ("index.html", "text/html; charset=utf-8"),
    "/ui/console.js": ("console.js", "text/javascript; charset=utf-8"),
    "/ui/console.css": ("console.css", "text/css; charset=utf-8"),
}
#: The page's policy: its own script and style only; the report is shown in a sandboxed frame.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; "
    "img-src 'self' data:; frame-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_CACHE: dict[str, bytes] = {}


def asset(service, key, params, path: str) -> Reply:
    """One of the console's files, from the package."""
    name, media = ASSETS[path]
    body = _CACHE.get(name)
    if body is None:
        body = resources.files("maasfin.serving").joinpath("ui", name).read_bytes()
        _CACHE[name] = body
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if name == "index.html":
        headers["Content-Security-Policy"] = CSP
    return Reply(200, body, headers, media)


def quantile_from_buckets(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The q-quantile of a cumulative histogram [(upper bound, count)] (Prometheus's
    histogram_quantile: linear within the bucket; the +Inf bucket answers its lower bound)."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound


class LatencyWindow:
    """Snapshots of the cumulative latency histograms (per model), so that percentiles can be taken
    over the requests of the last `window` seconds: the difference between the histogram now and
    the newest snapshot at least `window` old (or since start while the server is younger)."""

    def __init__(self, window: float = WINDOW_SECONDS):
        self.window = float(window)
        self._snapshots: collections.deque = collections.deque()
        self._lock = threading.Lock()

    def recent(self, now: float, current: dict[str, dict[float, float]]) -> dict[str, list[tuple[float, float]]]:
        """{model: cumulative [(upper bound, count)] of the requests within the window}."""
        with self._lock:
            base: dict = {}
            while self._snapshots and now - self._snapshots[0][0] >= self.window:
                if len(self._snapshots) == 1 or now - self._snapshots[1][0] < self.window:
                    base = self._snapshots[0][1]
                    break
                self._snapshots.popleft()
            if not self._snapshots or now - self._snapshots[-1][0] >= 1.0:  # at most one a second
                self._snapshots.append((now, {m: dict(b) for m, b in current.items()}))
        out = {}
        for model, buckets in current.items():
            old = base.get(model, {})
            out[model] = sorted((le, max(0.0, n - old.get(le, 0.0))) for le, n in buckets.items())
        return out


_WINDOWS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_WINDOWS_LOCK = threading.Lock()


def _window(service) -> LatencyWindow:
    with _WINDOWS_LOCK:
        w = _WINDOWS.get(service)
        if w is None:
            w = _WINDOWS[service] = LatencyWindow()
        return w


def _stats(service, names: list[str]) -> dict:
    wanted = {"maasfin_requests_total", "maasfin_request_errors_total", "maasfin_request_latency_seconds_bucket"}
    out = {n: {"requests": 0.0, "errors": 0.0, "buckets": {}} for n in names}
    for s in service.metrics.samples(wanted):
        row = out.get(s.labels.get("model"))
        if row is None:
            continue
        if s.name == "maasfin_requests_total":
            row["requests"] += s.value
        elif s.name == "maasfin_request_errors_total":
            row["errors"] += s.value
        else:
            le = float(s.labels["le"])
            row["buckets"][le] = row["buckets"].get(le, 0.0) + s.value
    recent = _window(service).recent(time.monotonic(), {n: row["buckets"] for n, row in out.items()})
    stats = {}
    for n, row in out.items():
        buckets = recent[n]
        stats[n] = {
            "requests": int(row["requests"]),
            "errors": int(row["errors"]),
            "latency_window_s": WINDOW_SECONDS,
            "latency_ms": {
                f"p{int(q * 100)}": (None if (v := quantile_from_buckets(q, buckets)) is None else v * 1000.0)
                for q in (0.5, 0.95, 0.99)
            },
        }
    return stats


def models_status(service, key, params) -> Reply:
    """GET /v1/console/models: the models `key` may see, each with the repository's status
    (versions, state, labels), its request counters since start and its latency percentiles over
    the last WINDOW_SECONDS."""
    names = [n for n in service.repository.names() if key is None or key.allows(n)]
    stats = _stats(service, names)
    models = []
    for n in names:
        status = service.repository.status(n)
        status["stats"] = stats[n]
        models.append(status)
    return json_reply({"models": models})


def _asset_endpoint(path: str) -> Endpoint:
    return Endpoint(
        "ui" + path[3:].replace("/", "_").replace(".", "_"),
        "GET",
        path,
        "open",
        lambda service, key, params, _p=path: asset(service, key, params, _p),
        None,
        "console",
        f"The web console's {ASSETS[path][0]}",
    )


ENDPOINTS: tuple[Endpoint, ...] = tuple(_asset_endpoint(p) for p in ASSETS) + (
    Endpoint(
        "console_models",
        "GET",
        "/v1/console/models",
        "read",
        models_status,
        None,
        "console",
        "Models this key may see: versions, labels, state, request counts, latency percentiles",
    ),
)
