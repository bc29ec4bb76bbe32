"""Shadow versions: a copy of routed traffic predicted off the response path (`ShadowRunner`).

After a routed request has been answered (`Service.finish`), a copy is queued for the shadow
versions of its model's traffic policy (routing.py) and predicted in one background thread, at a
lower CPU priority: its decoded inputs are reused when the shadow version has the same signature
(else the request is decoded again for it), and the copies queued meanwhile are merged into one
predict call per version. The outputs go to the audit log, in a line marked `"shadow": true` with the request's
`request_id`, and to the metrics (`maasfin_routed_requests{route="shadow"}`,
`maasfin_shadow_latency_seconds`); never to the client. At most `max_pending` requests wait: when
shadows fall behind, further copies are dropped and counted (`maasfin_shadow_dropped`) rather
than slowing the served traffic down.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from maasfin.serving import codec
from maasfin.serving.audit import tensor_digest, timestamp
from maasfin.serving.errors import RequestError

__all__ = ["ShadowRunner"]

log = logging.getLogger("maasfin.serving")


SHADOW_NICENESS = 10


def _lower_priority() -> None:
    """The shadow thread yields the CPU to served requests: on Linux, a thread has its own nice
    value (elsewhere this is a no-op)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SHADOW_NICENESS)
    except (AttributeError, OSError):
        pass


@dataclass
class _Copy:
    ex: object
    decode: object
    request: object
    versions: tuple
    signature: object
    xs: list
    queued: float


def _reusable(c: _Copy, sv) -> bool:
    """Whether the primary version's decoded inputs are the shadow version's too."""
    return c.xs is not None and not sv.signature.raw and c.signature == sv.signature


class ShadowRunner:
    """Runs shadow predictions for `service` (its repository, metrics, audit log, `predict_rows`)."""

    def __init__(self, service, max_pending: int = 256):
        self.service = service
        self.max_pending = max_pending
        self._queue: deque[_Copy] = deque()
        self._busy = 0
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, ex, decode, request, versions: tuple[int, ...], signature=None, xs=None) -> None:
        """Queues the shadow predictions of answered request `ex` (or drops them, counted)."""
        with self._lock:
            if len(self._queue) + self._busy >= self.max_pending or self._closed:
                for v in versions:
                    self.service.metrics.shadow_dropped.labels(ex.model, str(v)).inc()
                return
            self._queue.append(_Copy(ex, decode, request, versions, signature, xs, time.perf_counter()))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="maasfin-shadow", daemon=True)
                self._thread.start()
            self._lock.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """True once no shadow prediction is pending (within `timeout` seconds)."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._queue and not self._busy, timeout)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
            self._lock.notify_all()
        if thread is not None:
            thread.join(timeout=30)

    def _loop(self) -> None:
        _lower_priority()
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._queue or self._closed)
                if not self._queue:
                    return
                batch = list(self._queue)
                self._queue.clear()
                self._busy = len(batch)
            try:
                for version in sorted({v for c in batch for v in c.versions}):
                    for model in sorted({c.ex.model for c in batch if version in c.versions}):
                        group = [c for c in batch if version in c.versions and c.ex.model == model]
                        try:
                            self._group(model, version, group)
                        except Exception:  # noqa: BLE001 - a shadow must never take the server down
                            log.exception("shadow version %s of model '%s' failed", version, model)
            finally:
                with self._lock:
                    self._busy = 0
                    self._lock.notify_all()

    def _group(self, model: str, version: int, group: list[_Copy]) -> None:
        """The copies of `group` predicted by `version`: merged where their inputs can be reused."""
        service = self.service
        try:
            lease = service.repository.lease(model, version=version)
        except RequestError as e:
            for c in group:
                self._account(c, version, None, None, e.status, e.message)
            return
        with lease as sv:
            names = [sv.signature.output.name]
            merged, alone = [], []
            for c in group:
                (merged if _reusable(c, sv) else alone).append(c)
            if len(merged) > 1:
                try:
                    xs = [np.concatenate(parts) for parts in zip(*(c.xs for c in merged))]
                    y = service.predict_rows(sv, xs)
                    codec.check_outputs_finite(y)
                except RequestError:
                    alone, merged = merged + alone, []  # one at a time: only the offending copy fails
                else:
                    service.metrics.observe_batch(model, str(version), int(y.shape[0]), len(merged))
                    lo = 0
                    for c in merged:
                        n = int(c.xs[0].shape[0])
                        self._account(c, version, y[lo : lo + n], names, 200, None)
                        lo += n
            else:
                alone = merged + alone
            for c in alone:
                try:
                    xs = c.xs if _reusable(c, sv) else c.decode(c.request, sv)[0]
                    y = service.predict_rows(sv, xs)
                    codec.check_outputs_finite(y)
                    service.metrics.observe_batch(model, str(version), int(y.shape[0]), 1)
                    self._account(c, version, y, names, 200, None)
                except RequestError as e:
                    self._account(c, version, None, None, e.status, e.message)

    def _account(self, c: _Copy, version: int, y, names, status: int, error) -> None:
        """The shadow's metrics and audit line (never the client's)."""
        service, ex = self.service, c.ex
        seconds = time.perf_counter() - c.queued
        if status != 404:
            service.metrics.routed.labels(ex.model, str(version), "shadow").inc()
            service.metrics.shadow_latency.labels(ex.model, str(version)).observe(seconds)
        audit = service.audit
        if audit is None:
            return
        rec = {
            "time": timestamp(),
            "request_id": ex.request_id,
            "shadow": True,
            "route": "shadow",
            "protocol": ex.protocol,
            "model": ex.model,
            "version": version,
            "rows": None if y is None else int(y.shape[0]),
        }
        if audit.outputs == "values":
            rec["outputs"] = None if y is None else y.tolist()
        else:
            rec["outputs_sha256"] = None if y is None else tensor_digest([y], names)
        rec["status"] = status
        rec["latency_ms"] = round(seconds * 1000.0, 3)
        rec["error"] = error
        audit.write(rec)
