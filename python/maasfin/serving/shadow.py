"""Shadow versions: a copy of routed traffic predicted off the response path (`ShadowRunner`).

After a routed request has been answered (`Service.finish`), the request is decoded again for
each shadow version of its model's traffic policy (routing.py) and predicted in one background
thread. The outputs go to the audit log, in a line marked `"shadow": true` with the request's
`request_id`, and to the metrics (`maasfin_routed_requests{route="shadow"}`,
`maasfin_shadow_latency_seconds`); never to the client. At most `max_pending` requests wait: when
shadows fall behind, further copies are dropped and counted (`maasfin_shadow_dropped`) rather
than slowing the served traffic down.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from maasfin.serving import codec
from maasfin.serving.audit import tensor_digest, timestamp
from maasfin.serving.errors import RequestError

__all__ = ["ShadowRunner"]

log = logging.getLogger("maasfin.serving")


class ShadowRunner:
    """Runs shadow predictions for `service` (its repository, metrics, audit log, `predict_rows`)."""

    def __init__(self, service, max_pending: int = 256):
        self.service = service
        self.max_pending = max_pending
        self._pending = 0
        self._lock = threading.Condition()
        self._executor: ThreadPoolExecutor | None = None

    def submit(self, ex, decode, request, versions: tuple[int, ...]) -> None:
        """Queues the shadow predictions of answered request `ex` (or drops them, counted)."""
        with self._lock:
            if self._pending >= self.max_pending:
                for v in versions:
                    self.service.metrics.shadow_dropped.labels(ex.model, str(v)).inc()
                return
            self._pending += 1
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="maasfin-shadow")
            executor = self._executor
        executor.submit(self._run, ex, decode, request, versions)

    def wait_idle(self, timeout: float) -> bool:
        """True once no shadow prediction is pending (within `timeout` seconds)."""
        with self._lock:
            return self._lock.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _run(self, ex, decode, request, versions) -> None:
        try:
            for v in versions:
                try:
                    self._one(ex, decode, request, v)
                except Exception:  # noqa: BLE001 - a shadow must never take the server down
                    log.exception("shadow version %s of model '%s' failed for request %s", v, ex.model, ex.request_id)
        finally:
            with self._lock:
                self._pending -= 1
                self._lock.notify_all()

    def _one(self, ex, decode, request, version: int) -> None:
        service = self.service
        t0 = time.perf_counter()
        rec = {
            "time": timestamp(),
            "request_id": ex.request_id,
            "shadow": True,
            "route": "shadow",
            "protocol": ex.protocol,
            "model": ex.model,
            "version": version,
            "rows": None,
        }
        outputs = None
        status, error = 200, None
        try:
            with service.repository.lease(ex.model, version=version) as sv:
                xs, _ = decode(request, sv)
                rec["rows"] = int(xs[0].shape[0])
                y = service.predict_rows(sv, xs)
                codec.check_outputs_finite(y)
                service.metrics.observe_batch(ex.model, str(version), rec["rows"], 1)
                outputs = y
                names = [sv.signature.output.name]
        except RequestError as e:
            status, error = e.status, e.message
        seconds = time.perf_counter() - t0
        known = status != 404
        if known:
            service.metrics.routed.labels(ex.model, str(version), "shadow").inc()
            service.metrics.shadow_latency.labels(ex.model, str(version)).observe(seconds)
        audit = service.audit
        if audit is None:
            return
        if audit.outputs == "values":
            rec["outputs"] = outputs.tolist() if outputs is not None else None
        else:
            rec["outputs_sha256"] = tensor_digest([outputs], names) if outputs is not None else None
        rec["status"] = status
        rec["latency_ms"] = round(seconds * 1000.0, 3)
        rec["error"] = error
        audit.write(rec)
