"""A server's state and accounting, independent of web framework and protocol: `Service`.

The service holds the repository, the API keys, the audit log, the metrics and the drift monitor;
it starts and stops them, authenticates and authorizes, leases model versions, and accounts for
every prediction request. The ASGI app (app.py) and the Flask blueprint (flask_app.py) are thin
adapters over it and over the protocols' endpoints (routes.py), so both answer alike, byte for
byte.

A prediction request goes in three steps so that the predict step can be awaited (ASGI, through
the batcher) or called (Flask):
1. its endpoint's `call(service, ex, body, params, headers)` parses and validates the request and
   returns a `Plan` made by `Service.plan` (the version leased, the inputs counted and digested);
2. the caller runs `predict_tiled` on `plan.xs` (`Service.predict` in Flask's case);
3. `Service.reply(plan, y)` checks the outputs, records them for the audit line, has the protocol
   encode them and feeds the drift window (or, for explanations, `explaining.explain(plan, y)`);
then the caller releases `plan.lease` and `Service.finish` writes the audit line and the metrics.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from maasfin import config as core_config
from maasfin.serving import codec
from maasfin.serving.audit import AuditLog, tensor_digest, timestamp
from maasfin.serving.auth import KeyEntry, KeysFileError, KeyStore, presented_key
from maasfin.serving.config import ServingConfig
from maasfin.serving.drift import DriftMonitor
from maasfin.serving.errors import bad_request
from maasfin.serving.exchange import Exchange, Plan, Reply
from maasfin.serving.metrics import ServingMetrics
from maasfin.serving.outcomes.recorder import OutcomeRecorder, default_scores
from maasfin.serving.protocols import grpc as grpc_protocol
from maasfin.serving.refusals import RefusalLimiter
from maasfin.serving.repository import Lease, ModelRepository
from maasfin.serving.shadow import ShadowRunner
from maasfin.serving.tiling import predict_tiled

__all__ = ["Service", "ServingConfig"]

log = logging.getLogger("maasfin.serving")


def check_indices(version, xs: list[np.ndarray]) -> None:
    """400 for a request whose index inputs (those feeding an Embedding or a CategoryEncoding,
    `model.index_limits()`) hold a value that is not an integer in range: checked per request,
    before batching, so that it never reaches a merged batch."""
    limits = version.attachments.get("index_limits")
    if limits is None:
        limits = version.attachments["index_limits"] = version.model.index_limits()
    if not limits:
        return
    for spec, x in zip(version.signature.inputs, xs):
        if spec.name not in limits:
            continue
        limit, layer = limits[spec.name]
        bad = ~((x >= 0) & (x < limit) & (np.floor(x) == x))
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            value = float(x[np.unravel_index(int(np.argmax(bad)), x.shape)])
            raise bad_request(
                f"input '{spec.name}' row {row} holds {value:g}, not an index in [0, {limit}) "
                f"(layer '{layer}' of model '{version.name}')"
            )


class Service:
    def __init__(self, config: ServingConfig):
        self.config = config
        self.repository = ModelRepository(config.repo, poll_seconds=config.poll_seconds, tile=config.tile)
        self.keys = KeyStore(config.api_keys) if config.api_keys else None  # a bad file fails here, at start-up
        self.audit: AuditLog | None = None
        self.refusals: RefusalLimiter | None = None
        self.metrics = ServingMetrics()
        self.drift = DriftMonitor(config.drift_window, config.drift_dir, self.repository, self.metrics)
        self.shadows = ShadowRunner(self)
        self.outcomes: OutcomeRecorder | None = None
        self.grpc_server = None
        self.batch_predict = None  # set by the ASGI app: (version, xs) -> Future of batched outputs
        if config.grpc_port is not None:
            grpc_protocol.check_available()  # a missing extra fails here, naming it
        if config.store:
            self.outcomes = OutcomeRecorder(
                config.store, self.metrics, config.store_retention_days, config.store_inputs
            )
            self.repository.add_poll_hook(self.outcomes.poll)
        self.repository.add_listener(self.on_repository_event)
        self.repository.add_poll_hook(self.reload_keys)
        self.repository.add_poll_hook(self.evaluate_drift)
        self.started = False

    # -- lifecycle (in the worker process: this is where models load) -------------------------
    def start(self, set_threads: bool = True) -> None:
        """Opens the audit log and loads the repository (then polls it). `set_threads` applies the
        per-worker oneDNN thread count (maasfin.config.set_num_threads), a process-wide setting."""
        if self.started:
            return
        if set_threads:
            core_config.set_num_threads(self.config.num_threads or self.config.threads_per_worker())
        if self.config.audit_log:
            path = self.config.audit_log
            if self.config.workers > 1:  # one file per worker process: rotation stays per file
                path = f"{path}.{os.getpid()}"
            self.audit = AuditLog(
                path,
                max_bytes=self.config.audit_max_bytes,
                backups=self.config.audit_backups,
                fsync=self.config.audit_fsync,
                outputs=self.config.audit_outputs,
            )
            self.refusals = RefusalLimiter(
                self.config.audit_refused_rate,
                self.config.audit_refused_burst,
                self.config.audit_summary_seconds,
            )
        if self.outcomes is not None:
            self.outcomes.open()
        self.repository.start(background=True)
        if self.config.grpc_port is not None:
            self.grpc_server = grpc_protocol.serve(self, self.config.grpc_port, self.config.grpc_host)
        self.started = True

    def stop(self) -> None:
        if not self.started:
            return
        if self.grpc_server is not None:
            self.grpc_server.stop(grace=2).wait()
            self.grpc_server = None
        self.repository.stop()
        self.shadows.close()
        if self.outcomes is not None:
            self.outcomes.close()
        self.drift.close()
        if self.audit is not None:
            for line in self.refusals.drain():
                self.audit.write(line)
            self.audit.close()
        self.started = False

    def poll(self) -> None:
        """One repository pass and a re-read of a changed keys file (the poll thread does both)."""
        self.repository.poll()

    def on_repository_event(self, event: str, name: str, version, detail) -> None:
        """The repository's listener: load counters, the loaded-versions gauge, drift gauges."""
        if event == "loaded":
            self.metrics.loads.labels(name).inc()
        elif event == "failed":
            self.metrics.load_failures.labels(name).inc()
        if event == "loaded" or event == "unloaded":
            self.metrics.versions.set(len(self.repository.loaded_versions()))
        if event == "unloaded":
            self.drift.forget(name, version)

    def reload_keys(self) -> None:
        if self.keys is None:
            return
        try:
            if self.keys.reload_if_changed():
                log.info("API keys file %s reloaded", self.keys.path)
        except (OSError, KeysFileError) as e:
            log.error("API keys file could not be reloaded (%s); the previous keys stay in force", e)

    def evaluate_drift(self) -> None:
        """The drift gauges and `drift_band` audit lines of every loaded version (drift.py)."""
        self.drift.evaluate(self.audit)

    # -- auth ----------------------------------------------------------------------------------
    def authenticate(self, authorization: str | None, x_api_key: str | None) -> KeyEntry | None:
        if self.keys is None:
            return None
        return self.keys.authenticate(presented_key(authorization, x_api_key))

    def authorize(self, key: KeyEntry | None, model: str) -> None:
        if self.keys is not None:
            KeyStore.authorize(key, model)

    def authorize_metrics(self, key: KeyEntry | None) -> None:
        """/metrics shows every model's names, traffic and drift: with keys on, only to a key with
        the `metrics` scope."""
        if self.keys is not None:
            KeyStore.authorize_scope(key, "metrics", "/metrics")

    # -- prediction requests -------------------------------------------------------------------
    def lease(self, ex: Exchange, name, version=None, label=None) -> Lease:
        """The version a request names, authorized for its key and recorded in `ex`."""
        if not isinstance(name, str) or not name:
            raise bad_request(f"model_name must be a non-empty string, got {codec.json_type(name)}")
        ex.model = name
        ex.label = label
        self.authorize(ex.key, name)
        lease = self.repository.lease(name, version=version, label=label, routing_key=ex.routing_key)
        ex.version = lease.version.version
        ex.route = lease.route
        return lease

    def plan(self, ex: Exchange, name, version, label, decode, request, explain: dict | None = None) -> Plan:
        """Leases the version a request names and decodes the request against it:
        `decode(request, served_version) -> (inputs, answer)`; the lease is released if that fails."""
        lease = self.lease(ex, name, version, label)
        try:
            xs, answer = decode(request, lease.version)
            check_indices(lease.version, xs)
            ex.rows = int(xs[0].shape[0])
            if lease.shadows:
                ex.shadow = (decode, request, lease.shadows, lease.version.signature, xs)
            if self.audit is not None or self.outcomes is not None:
                ex.input_sha256 = tensor_digest(xs, lease.version.signature.input_names())
            return Plan(ex, lease, xs, answer, explain)
        except BaseException:
            lease.release()
            raise

    def predict_rows(self, version, xs: list[np.ndarray]) -> np.ndarray:
        """`predict_tiled` on served `version`; inputs the model refuses (ValueError: an index out
        of an Embedding's or CategoryEncoding's range, say) are the client's error, a 400."""
        try:
            return predict_tiled(version.model, xs, self.config.tile)
        except ValueError as e:
            names = ", ".join(repr(n) for n in version.signature.input_names())
            raise bad_request(
                f"input {names} does not fit model '{version.name}' version {version.version}: {e}"
            ) from None

    def predict(self, plan: Plan) -> np.ndarray:
        """Synchronous predict (the Flask blueprint; the ASGI app batches instead): one request per call."""
        v = plan.lease.version
        y = self.predict_rows(v, plan.xs)
        self.metrics.observe_batch(v.name, str(v.version), int(plan.xs[0].shape[0]), 1)
        return y

    def reply(self, plan: Plan, y: np.ndarray) -> Reply:
        """The reply to a predicted plan: the outputs checked (finite) and recorded for the audit
        line, encoded by the request's protocol, and the rows added to the version's drift window."""
        codec.check_outputs_finite(y)
        if self.audit is not None:
            if self.audit.outputs == "values":
                plan.exchange.outputs = y.tolist()
            else:
                plan.exchange.outputs_sha256 = tensor_digest([y], [plan.lease.version.signature.output.name])
        reply = plan.answer.encode(y)
        reply.headers["X-Model-Version"] = str(plan.lease.version.version)
        if self.outcomes is not None:
            plan.exchange.scores = default_scores(y)
        self.drift.observe(plan.lease.version, plan.xs, y)
        return reply

    # -- accounting ----------------------------------------------------------------------------
    @property
    def finish_blocks(self) -> bool:
        """Whether `finish` may wait on a disk or a database (the ASGI app runs it in a thread)."""
        return (self.audit is not None and self.audit.fsync) or self.outcomes is not None

    def finish(self, ex: Exchange, status: int) -> None:
        """Writes the audit line and, for prediction requests, the metrics of a request that
        reached a route (raises if the audit write fails). Lines of refused requests (4xx) are
        rate-limited per key or client address (refusals.py)."""
        seconds = time.perf_counter() - ex.started
        if ex.observe:
            known = ex.model is not None and self.repository.has_model(ex.model)
            model_label = ex.model if known else ""
            version_label = str(ex.version) if (known and ex.version is not None) else ""
            self.metrics.observe_request(ex.protocol, model_label, version_label, status, seconds)
            if status == 200 and ex.route is not None and version_label:
                self.metrics.routed.labels(model_label, version_label, ex.route).inc()
        if status == 200 and ex.scores is not None:
            self.outcomes.record(ex, ex.scores)
        try:
            self.write_audit(ex, status, seconds)
        finally:
            if status == 200 and ex.shadow is not None:
                self.shadows.submit(ex, *ex.shadow)

    def write_audit(self, ex: Exchange, status: int, seconds: float) -> None:
        """The audit line of a request (none without an audit log); refused requests' lines are
        rate-limited per key or client address (refusals.py)."""
        if self.audit is None:
            return
        key = ex.key.name if ex.key is not None else None
        if 400 <= status < 500:
            admitted, summaries = self.refusals.admit(key, ex.client)
        else:
            admitted, summaries = True, self.refusals.due()
        for line in summaries:
            self.audit.write(line)
        if not admitted:
            return
        rec = {
            "time": timestamp(),
            "request_id": ex.request_id,
            "key": key,
            "client": ex.client,
            "method": ex.method,
            "path": ex.path,
            "protocol": ex.protocol,
            "model": ex.model,
            "version": ex.version,
            "label": ex.label,
            "rows": ex.rows,
            "input_sha256": ex.input_sha256,
            "body_sha256": ex.body_sha256,
        }
        if ex.route in ("split", "sticky"):  # chosen by the model's traffic policy (routing.py)
            rec["route"] = ex.route
        if self.audit.outputs == "values":
            rec["outputs"] = ex.outputs
        else:
            rec["outputs_sha256"] = ex.outputs_sha256
        rec["status"] = status
        rec["latency_ms"] = round(seconds * 1000.0, 3)
        rec["error"] = ex.error
        self.audit.write(rec)
