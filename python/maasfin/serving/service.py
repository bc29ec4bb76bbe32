"""What a server does, independent of the web framework: configuration, the repository, keys,
audit and metrics, and each endpoint as plain functions. The ASGI app (app.py) and the Flask
blueprint (flask_app.py) are thin adapters over this, so both answer alike, byte for byte.

A prediction request is handled in three steps so that the predict step can be awaited (ASGI,
through the batcher) or called (Flask): `plan_*` parses and validates the request and leases the
model version, the caller runs `predict_tiled` on `plan.xs`, and `plan.encode(y)` builds the reply.
"""
from __future__ import annotations

import json

import hashlib
import itertools
import logging
import os
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from maasfin.serving import codec
from maasfin.serving.audit import AuditLog, tensor_digest
from maasfin.serving.auth import KeyEntry, KeyStore, KeysFileError
from maasfin.serving.errors import RequestError, bad_request
from maasfin.serving.repository import LABEL_RE, VERSION_RE, Lease, ModelRepository
from maasfin.serving.signature import DEFAULT_TILE, predict_tiled
from maasfin.signature import Signature

log = logging.getLogger("maasfin.serving")

MiB = 1024 * 1024


@dataclass
class ServingConfig:
    """Every option of a server; `maasfin serve --help` lists the same ones."""
    repo: str
    api_keys: str | None = None           # JSON file of hashed keys (auth.py); None: no authentication
    audit_log: str | None = None          # JSON-lines file; None: no audit log
    audit_outputs: str = "hash"           # "hash" (outputs_sha256) or "values" (the predictions themselves)
    audit_fsync: bool = False             # fsync every line before the response
    audit_max_bytes: int = 100 * MiB      # rotate past this size
    audit_backups: int = 10               # rotated files kept
    max_batch_size: int = 256             # rows merged into one predict call
    max_latency_ms: float = 2.0           # longest a request waits for others to join its batch
    poll_seconds: float = 5.0             # repository polling period (0: no polling)
    max_body_bytes: int = 16 * MiB        # request body limit (after decompression)
    request_timeout_s: float = 30.0       # body read + queue + predict; then 504
    num_threads: int | None = None        # oneDNN threads per worker (default: cores // workers)
    predict_threads: int | None = None    # threads running predict calls (default: cores // workers)
    max_queue: int = 4096                 # queued requests per model version before 503
    tile: int = DEFAULT_TILE              # rows per core call (signature.py)
    public_docs: bool = False             # /docs and /openapi.json without a key
    workers: int = 1                      # processes (maasfin serve); used for thread defaults
    drift_window: int = 5000              # recent rows per version kept for drift reports (0: none)
    drift_dir: str | None = None          # shared by the workers: drift windows merged over them (drift.py)

    def __post_init__(self):
        self.repo = os.fspath(self.repo)
        for name in ("max_batch_size", "max_body_bytes", "max_queue", "tile", "workers", "audit_max_bytes"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        for name in ("num_threads", "predict_threads"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {v!r}")
        if isinstance(self.drift_window, bool) or not isinstance(self.drift_window, int) or self.drift_window < 0:
            raise ValueError(f"drift_window must be an integer >= 0, got {self.drift_window!r}")
        if not self.max_latency_ms >= 0:
            raise ValueError(f"max_latency_ms must be >= 0, got {self.max_latency_ms!r}")
        if not self.poll_seconds >= 0:
            raise ValueError(f"poll_seconds must be >= 0, got {self.poll_seconds!r}")
        if not self.request_timeout_s > 0:
            raise ValueError(f"request_timeout_s must be > 0, got {self.request_timeout_s!r}")
        if self.audit_outputs not in ("hash", "values"):
            raise ValueError(f"audit_outputs must be 'hash' or 'values', got {self.audit_outputs!r}")

    def threads_per_worker(self) -> int:
        return max(1, (os.cpu_count() or 1) // self.workers)


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict = field(default_factory=dict)
    media_type: str = "application/json"


def error_reply(e: RequestError) -> Reply:
    return Reply(e.status, codec.dumps({"error": e.message}), dict(e.headers))


def json_reply(obj, status: int = 200) -> Reply:
    return Reply(status, codec.dumps(obj))


def _new_id_prefix() -> None:
    global _ID_PREFIX, _ids
    _ID_PREFIX, _ids = os.urandom(8).hex(), itertools.count()


_new_id_prefix()
os.register_at_fork(after_in_child=_new_id_prefix)  # pre-forked WSGI workers get their own


def new_request_id() -> str:
    """32 hex digits, unique per process (a random prefix and a counter): the X-Request-ID of a
    request. Cheaper than uuid4 (no system call per request)."""
    return f"{_ID_PREFIX}{next(_ids) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


@dataclass
class Exchange:
    """One prediction request, as the audit log and the metrics see it."""
    protocol: str
    method: str
    path: str
    client: str | None
    request_id: str = field(default_factory=new_request_id)
    started: float = field(default_factory=time.perf_counter)
    key: KeyEntry | None = None
    model: str | None = None
    version: int | None = None
    label: str | None = None
    rows: int | None = None
    input_sha256: str | None = None
    body_sha256: str | None = None
    outputs: object = None
    outputs_sha256: str | None = None
    error: str | None = None


@dataclass
class Plan:
    lease: Lease
    xs: list
    encode: object  # encode(y: np.ndarray) -> Reply


def _explain_options(obj: dict, prefix: str) -> dict:
    """Pops and checks the explanation options "top_k" (1..20, default 4) and "steps" (1..512,
    default 64) from a request object."""
    options = {k: obj.pop(k) for k in ("top_k", "steps") if k in obj}
    for k, hi in (("top_k", 20), ("steps", 512)):
        v = options.get(k)
        if v is not None and (type(v) is not int or not 1 <= v <= hi):
            raise bad_request(f"'{prefix}{k}' must be an integer in [1, {hi}], got {v!r}")
    return {"top_k": options.get("top_k") or 4, "steps": options.get("steps") or 64}


class Service:
    def __init__(self, config: ServingConfig):
        self.config = config
        self.repository = ModelRepository(config.repo, poll_seconds=config.poll_seconds, tile=config.tile)
        self.keys = KeyStore(config.api_keys) if config.api_keys else None  # a bad file fails here, at start-up
        self.audit: AuditLog | None = None
        from maasfin.serving.metrics import ServingMetrics
        self.metrics = ServingMetrics()
        self.repository.add_listener(self._on_repository_event)
        self.repository.add_poll_hook(self.reload_keys)
        self.repository.add_poll_hook(self.evaluate_drift)
        self._drift_lock = threading.Lock()
        self._drift_bands: dict = {}  # (name, version) -> {feature: band} of the last evaluation
        self._shared_windows: list = []  # this worker's drift window files (drift_dir), removed at stop
        self.started = False

    # -- lifecycle (in the worker process: this is where models load) -------------------------
    def start(self, set_threads: bool = True) -> None:
        """Opens the audit log and loads the repository (then polls it). `set_threads` applies the
        per-worker oneDNN thread count (maasfin.config.set_num_threads), a process-wide setting."""
        if self.started:
            return
        if set_threads:
            from maasfin import config as core_config
            core_config.set_num_threads(self.config.num_threads or self.config.threads_per_worker())
        if self.config.audit_log:
            path = self.config.audit_log
            if self.config.workers > 1:  # one file per worker process: rotation stays per file
                path = f"{path}.{os.getpid()}"
            self.audit = AuditLog(path, max_bytes=self.config.audit_max_bytes, backups=self.config.audit_backups,
                                  fsync=self.config.audit_fsync, outputs=self.config.audit_outputs)
        self.repository.start(background=True)
        self.started = True

    def stop(self) -> None:
        self.repository.stop()
        for w in self._shared_windows:
            w.close()
        self._shared_windows.clear()
        if self.audit is not None:
            self.audit.close()
        self.started = False

    def poll(self) -> None:
        """One repository pass and a re-read of a changed keys file (the poll thread does both)."""
        self.repository.poll()

    def _on_repository_event(self, event: str, name: str, version, detail) -> None:
        if event == "loaded":
            self.metrics.loads.labels(name).inc()
        elif event == "failed":
            self.metrics.load_failures.labels(name).inc()
        if event == "loaded" or event == "unloaded":
            self.metrics.versions.set(len(self.repository.loaded_versions()))
        if event == "unloaded":
            with self._drift_lock:
                bands = self._drift_bands.pop((name, int(version)), {})
            for feature in bands:
                self.metrics.remove_drift(name, str(version), feature)

    def reload_keys(self) -> None:
        if self.keys is None:
            return
        try:
            if self.keys.reload_if_changed():
                log.info("API keys file %s reloaded", self.keys.path)
        except (OSError, KeysFileError) as e:
            log.error("API keys file could not be reloaded (%s); the previous keys stay in force", e)

    # -- auth ----------------------------------------------------------------------------------
    def authenticate(self, authorization: str | None, x_api_key: str | None) -> KeyEntry | None:
        if self.keys is None:
            return None
        from maasfin.serving.auth import presented_key
        return self.keys.authenticate(presented_key(authorization, x_api_key))

    def authorize(self, key: KeyEntry | None, model: str) -> None:
        if self.keys is not None:
            KeyStore.authorize(key, model)

    # -- prediction plans ----------------------------------------------------------------------
    def _lease(self, ex: Exchange, name, version=None, label=None) -> Lease:
        if not isinstance(name, str) or not name:
            raise bad_request(f"model_name must be a non-empty string, got {codec.json_type(name)}")
        ex.model = name
        ex.label = label
        self.authorize(ex.key, name)
        lease = self.repository.lease(name, version=version, label=label)
        ex.version = lease.version.version
        return lease

    def _prepared(self, ex: Exchange, lease: Lease, xs: list, make_reply) -> Plan:
        sig: Signature = lease.version.signature
        ex.rows = int(xs[0].shape[0])
        if self.audit is not None:
            ex.input_sha256 = tensor_digest(xs, sig.input_names())

        def encode(y: np.ndarray) -> Reply:
            codec.check_outputs_finite(y)
            if self.audit is not None:
                if self.audit.outputs == "values":
                    ex.outputs = y.tolist()
                else:
                    ex.outputs_sha256 = tensor_digest([y], [sig.output.name])
            reply = make_reply(y)
            self._observe_drift(lease.version, xs, y)
            return reply
        return Plan(lease, xs, encode)

    # -- drift ---------------------------------------------------------------------------------
    def _drift_window(self, v):
        """The version's rolling window, or None (drift_window=0, or no reference)."""
        w = v.attachments.get("drift")
        if w is None:
            model = v.model
            ref = model.drift_reference if model is not None else None
            usable = self.config.drift_window > 0 and ref is not None
            with self._drift_lock:
                w = v.attachments.get("drift")
                if w is None:
                    w = v.attachments["drift"] = self._new_drift_window(v, len(ref["features"])) if usable else False
        return None if w is False else w  # (an empty window is falsy: it has a length)

    def _new_drift_window(self, v, width: int):
        from maasfin.serving.drift import DriftWindow, SharedDriftWindow
        if self.config.drift_dir is None:
            return DriftWindow(self.config.drift_window, width)
        w = SharedDriftWindow(os.path.join(self.config.drift_dir, v.name, str(v.version)),
                              self.config.drift_window, width)
        v.on_unload(lambda _v: w.close())
        self._shared_windows.append(w)
        return w

    def _observe_drift(self, v, xs: list, y: np.ndarray) -> None:
        """Appends a successful prediction's rows and scores to the version's window (no computation)."""
        w = self._drift_window(v)
        if w is None:
            return
        n = xs[0].shape[0]
        x = xs[0].reshape(n, -1) if len(xs) == 1 else np.concatenate([a.reshape(n, -1) for a in xs], axis=1)
        if x.shape[1] == w.width:
            w.append(x, y.reshape(n, -1)[:, 0])

    def drift_report(self, key, name: str, version: str | None = None) -> Reply:
        """GET /v1/models/{name}[/versions/{v}]/drift: PSI per feature and for the score."""
        from maasfin.serving import drift
        if version is not None and not VERSION_RE.match(version):
            raise bad_request(f"version {version!r} in the URL is not a version number")
        ex = Exchange("tfserving", "GET", "", None, key=key)
        with self._lease(ex, name, version) as v:
            return json_reply(drift.report(v, self._drift_window(v), self.config.drift_window))

    def evaluate_drift(self) -> None:
        """Recomputes every loaded version's drift: sets the maasfin_drift_psi gauges and writes a
        `drift_band` audit line for each feature (or the score) whose band changed since the last
        evaluation. Runs on each /metrics scrape and each repository poll."""
        from maasfin.serving import drift
        if self.config.drift_window == 0:
            return
        for v in [v for v in self.repository.loaded_versions() if not v.retired]:
            try:
                self._evaluate_drift(v, drift)
            except Exception:  # noqa: BLE001 - monitoring must not break /metrics or the poller
                log.exception("drift evaluation of model '%s' version %d failed", v.name, v.version)

    def _evaluate_drift(self, v, drift) -> None:
        try:
            lease = self.repository.lease(v.name, version=v.version)
        except RequestError:
            return
        with lease as v:
            w = self._drift_window(v)
            if w is None:
                return
            rep = drift.report(v, w, self.config.drift_window)
        entries = [(f["feature"], f) for f in rep["features"]] + [("score", rep["score"])]
        changes = []
        with self._drift_lock:
            bands = self._drift_bands.setdefault((v.name, v.version), {})
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
            log.info("drift: model '%s' version %d %s moved from %s to %s (PSI %.4f)",
                     v.name, v.version, feature, old, e["band"], e["psi"])
        if self.audit is not None:
            for feature, old, e in changes:
                self.audit.write({
                    "time": datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z"),
                    "event": "drift_band", "model": v.name, "version": v.version, "feature": feature,
                    "from": old, "to": e["band"], "psi": e["psi"], "window_rows": rep["window"]["rows"]})

    def plan_simple(self, ex: Exchange, body: bytes) -> Plan:
        obj = codec.parse_json(body)
        unknown = sorted(k for k in obj if k not in ("model_name", "model_version", "input_data"))
        if unknown:
            raise bad_request(f"unknown field(s) {unknown}; the request takes 'model_name', 'input_data' "
                              "and optionally 'model_version' (a version number or a label)")
        if "model_name" not in obj:
            raise bad_request("the request has no 'model_name'")
        version, label = None, None
        mv = obj.get("model_version")
        if mv is not None:
            if type(mv) is int and mv >= 0:
                version = mv
            elif isinstance(mv, str) and VERSION_RE.match(mv):
                version = int(mv)
            elif isinstance(mv, str) and LABEL_RE.match(mv):
                label = mv
            else:
                raise bad_request(f"model_version must be a version number or a label name, got {mv!r}")
        lease = self._lease(ex, obj["model_name"], version, label)
        try:
            if "input_data" not in obj:
                raise bad_request("the request has no 'input_data' (a record, a list of records or a list of rows)")
            v = lease.version
            xs = codec.decode_with_model(obj["input_data"], v.signature, v.model) if v.signature.raw \
                else codec.decode_simple(obj["input_data"], v.signature, v.name)
            return self._prepared(ex, lease, xs, lambda y: Reply(200, codec.dumps_finite(
                {"model_name": v.name, "model_version": v.version, "predictions": y.tolist()})))
        except BaseException:
            lease.release()
            raise

    def plan_explain(self, ex: Exchange, body: bytes, path_model: tuple | None = None) -> tuple[Plan, dict]:
        """The simple call plus explanation options: {"top_k": 1..20 (4), "steps": 1..512 (64)}.
        `path_model` = (name, version or None) for the TF-Serving-style route, whose body is
        {"instances": rows or records} instead of model_name/input_data."""
        obj = codec.parse_json(body)
        if path_model is not None:
            if not isinstance(obj, dict) or "instances" not in obj:
                raise bad_request("the request needs 'instances': a list of rows or records")
            unknown = sorted(k for k in obj if k not in ("instances", "top_k", "steps"))
            if unknown:
                raise bad_request(f"unknown field(s) {unknown}; the request takes 'instances' and optionally "
                                  "'top_k' and 'steps'")
            obj = {"model_name": path_model[0], "input_data": obj.pop("instances"),
                   **({"model_version": int(path_model[1])} if path_model[1] is not None else {}), **obj}
        options = _explain_options(obj, "")
        plan = self.plan_simple(ex, json.dumps(obj).encode())
        return plan, options

    def plan_explain_v2(self, ex: Exchange, name: str, version: str | None, body: bytes,
                        header_length: str | None) -> tuple[Plan, dict]:
        """The Open Inference Protocol extension POST /v2/models/{name}[/versions/{v}]/explain: an
        inference request (JSON or binary tensors) whose `parameters` may hold "top_k" and "steps"."""
        if version is not None and not VERSION_RE.match(version):
            raise bad_request(f"version {version!r} in the URL is not a version number")
        head, binary = codec.split_binary(body, header_length)
        obj = codec.parse_json(head, "inference request header" if header_length is not None else "request body")
        params = obj.get("parameters")
        options = _explain_options(dict(params), "parameters.") if isinstance(params, dict) else \
            _explain_options({}, "parameters.")
        lease = self._lease(ex, name, version)
        try:
            v = lease.version
            if v.signature.strings:
                raise bad_request(f"model {v.name!r} takes string features, which the Open Inference Protocol "
                                  f"tensors here do not carry: send records to /v1/explain")
            req = codec.decode_v2(obj, binary, v.signature, v.name)
            options["v2"] = req
            return self._prepared(ex, lease, req.xs, None), options
        except BaseException:
            lease.release()
            raise

    def explain(self, plan: Plan, predictions, options: dict) -> Reply:
        """Attributions (integrated gradients against the model's stored baseline) and adverse
        reason codes for every row, next to the served predictions."""
        from maasfin import explain as explain_module
        v = plan.lease.version
        model = v.model
        try:
            values, names = explain_module.attribute(model, plan.xs, steps=options["steps"])
        except ValueError as e:  # e.g. a model saved without a baseline
            raise RequestError(409, f"model {v.name!r} version {v.version} cannot be explained: {e}") from None
        values = values.astype(np.float64)
        reasons = explain_module.reasons_from_attributions(model, values, options["top_k"])
        if options.get("v2") is not None:
            return Reply(200, codec.encode_v2_explanation(predictions, values, names, reasons, options["v2"], v.name,
                                                          v.version))
        return json_reply({"model_name": v.name, "model_version": v.version,
                           "predictions": predictions.tolist(),
                           "attributions": [dict(zip(names, map(float, row))) for row in values],
                           "reasons": reasons})

    def plan_tfserving(self, ex: Exchange, name: str, version: str | None, label: str | None, body: bytes) -> Plan:
        if version is not None and not VERSION_RE.match(version):
            raise bad_request(f"version {version!r} in the URL is not a version number")
        obj = codec.parse_json(body)
        lease = self._lease(ex, name, version, label)
        try:
            v = lease.version
            if v.signature.raw:
                mode = "instances" if "instances" in obj else "inputs"
                if set(obj) - {"signature_name"} != {mode}:
                    raise bad_request("the request needs exactly one of 'instances' (records) and 'inputs' (columns)")
                xs = codec.decode_with_model(obj[mode], v.signature, v.model, mode)
            else:
                xs, mode = codec.decode_tfserving(obj, v.signature, v.name)
            key = "predictions" if mode == "instances" else "outputs"
            return self._prepared(ex, lease, xs, lambda y: Reply(200, codec.dumps_finite({key: y.tolist()})))
        except BaseException:
            lease.release()
            raise

    def plan_v2(self, ex: Exchange, name: str, version: str | None, body: bytes, header_length: str | None) -> Plan:
        if version is not None and not VERSION_RE.match(version):
            raise bad_request(f"version {version!r} in the URL is not a version number")
        head, binary = codec.split_binary(body, header_length)
        obj = codec.parse_json(head, "inference request header" if header_length is not None else "request body")
        lease = self._lease(ex, name, version)
        try:
            v = lease.version
            if v.signature.strings:
                raise bad_request(f"model {v.name!r} takes string features, which the Open Inference Protocol "
                                  "tensors here do not carry: send records to /v1/predict or "
                                  f"/v1/models/{v.name}:predict")
            req = codec.decode_v2(obj, binary, v.signature, v.name)

            def reply(y):
                payload, headers, media = codec.encode_v2(y, req, v.name, v.version)
                return Reply(200, payload, headers, media)
            return self._prepared(ex, lease, req.xs, reply)
        except BaseException:
            lease.release()
            raise

    def predict(self, plan: Plan):
        """Synchronous predict (the Flask blueprint; the ASGI app batches instead): one request per call."""
        v = plan.lease.version
        y = predict_tiled(v.model, plan.xs, self.config.tile)
        self.metrics.observe_batch(v.name, str(v.version), int(plan.xs[0].shape[0]), 1)
        return y

    # -- status and metadata -------------------------------------------------------------------
    def _model_for_read(self, key: KeyEntry | None, name: str) -> None:
        self.authorize(key, name)

    def tf_status(self, key, name: str, version: str | None = None) -> Reply:
        self._model_for_read(key, name)
        st = self.repository.status(name)
        rows = st["versions"]
        if version is not None:
            if not VERSION_RE.match(version):
                raise bad_request(f"version {version!r} in the URL is not a version number")
            rows = [r for r in rows if r["version"] == int(version)]
            if not rows:
                raise RequestError(404, f"model '{name}' has no version {int(version)}")
        out = []
        for r in rows:
            ok = r["state"] == "AVAILABLE"
            out.append({"version": str(r["version"]), "state": "AVAILABLE" if ok else "END",
                        "status": {"error_code": "OK" if r["error"] is None else "UNKNOWN",
                                   "error_message": r["error"] or ""}})
        return json_reply({"model_version_status": out})

    def tf_metadata(self, key, name: str, version: str | None = None, label: str | None = None) -> Reply:
        ex = Exchange("tfserving", "GET", "", None, key=key)
        with self._lease(ex, name, version, label) as v:
            sig = v.signature

            def tensor(spec, batch_name):
                return {"dtype": "DT_FLOAT", "name": batch_name,
                        "tensor_shape": {"dim": [{"size": "-1", "name": ""}] +
                                         [{"size": str(d), "name": ""} for d in spec.shape],
                                         "unknown_rank": False}}
            sd = {"inputs": {s.name: tensor(s, s.name) for s in sig.inputs},
                  "outputs": {sig.output.name: tensor(sig.output, sig.output.name)},
                  "method_name": "tensorflow/serving/predict"}
            return json_reply({
                "model_spec": {"name": v.name, "signature_name": "", "version": str(v.version)},
                "metadata": {"signature_def": {"signature_def": {"serving_default": sd}}},
                "maasfin": {"feature_names": None if sig.feature_names is None else list(sig.feature_names),
                            "user_metadata": v.metadata}})

    def v2_server_metadata(self) -> Reply:
        import maasfin
        return json_reply({"name": "maasfin", "version": maasfin.__version__,
                           "extensions": ["binary_tensor_data"]})

    def v2_model_metadata(self, key, name: str, version: str | None = None) -> Reply:
        ex = Exchange("v2", "GET", "", None, key=key)
        if version is not None and not VERSION_RE.match(version):
            raise bad_request(f"version {version!r} in the URL is not a version number")
        with self._lease(ex, name, version) as v:
            sig = v.signature
            versions = [str(r["version"]) for r in self.repository.status(name)["versions"]
                        if r["state"] == "AVAILABLE"]
            return json_reply({
                "name": v.name, "versions": versions, "platform": "maasfin",
                "inputs": [{"name": s.name, "datatype": "FP32", "shape": [-1, *s.shape]} for s in sig.inputs],
                "outputs": [{"name": sig.output.name, "datatype": "FP32", "shape": [-1, *sig.output.shape]}],
                "parameters": {"version": str(v.version),
                               "feature_names": None if sig.feature_names is None else list(sig.feature_names)}})

    def v2_model_ready(self, key, name: str, version: str | None = None) -> Reply:
        self.authorize(key, name)
        if version is not None and not VERSION_RE.match(version):
            raise bad_request(f"version {version!r} in the URL is not a version number")
        if not self.repository.has_model(name):
            raise RequestError(404, f"model '{name}' is not in the repository")
        ready = self.repository.model_ready(name, None if version is None else int(version))
        return Reply(200 if ready else 400, codec.dumps({"name": name, "ready": ready}))

    def ready_reply(self) -> Reply:
        ready = self.repository.ready()
        return Reply(200 if ready else 503, codec.dumps({"ready": ready}))

    # -- accounting ----------------------------------------------------------------------------
    def finish(self, ex: Exchange, status: int) -> None:
        """Writes the audit line and the metrics of a prediction request (raises if the audit write fails)."""
        seconds = time.perf_counter() - ex.started
        known = ex.model is not None and self.repository.has_model(ex.model)
        model_label = ex.model if known else ""
        version_label = str(ex.version) if (known and ex.version is not None) else ""
        self.metrics.observe_request(ex.protocol, model_label, version_label, status, seconds)
        if self.audit is None:
            return
        rec = {
            "time": datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "request_id": ex.request_id,
            "key": ex.key.name if ex.key is not None else None,
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
        if self.audit.outputs == "values":
            rec["outputs"] = ex.outputs
        else:
            rec["outputs_sha256"] = ex.outputs_sha256
        rec["status"] = status
        rec["latency_ms"] = round(seconds * 1000.0, 3)
        rec["error"] = ex.error
        self.audit.write(rec)


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def decode_content(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body after its Content-Encoding (identity, gzip or deflate), at most `limit` bytes."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise RequestError(415, f"Content-Encoding {encoding!r} is not supported (use gzip, deflate or none)")
    d = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as e:
        raise RequestError(400, f"the request body is not valid {encoding} data ({e})") from None
    if len(out) > limit or d.unconsumed_tail:
        raise RequestError(413, f"the decompressed request body is larger than the limit of {limit} bytes")
    return out


def too_large(limit: int) -> RequestError:
    return RequestError(413, f"the request body is larger than the limit of {limit} bytes")
