"""The endpoints of a server, as data, so the ASGI app (app.py) and the Flask blueprint
(flask_app.py) serve the same ones and differ only in how they read a request and send a reply.

Each `Endpoint` says its method and path (Starlette style: `/v2/models/{name}/infer`), its kind,
and how it calls the service (service.py):

- "predict" / "explain": `call(service, params, headers)` returns the planner `plan(ex, body)`
  (explain: returning `(plan, options)` for `Service.explain`); the front end reads the body under
  the size limit, predicts (the ASGI app through its batcher, Flask in the request's thread) and
  encodes;
- "read": `call(service, key, params)` returns a Reply; an API key is required when keys are on;
- "open": like "read", but answered without a key (the v2 health checks);
- "metrics": the Prometheus text (drift gauges are evaluated first).

`params` are the path parameters; `headers` a case-insensitive mapping of request headers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from maasfin.serving import codec
from maasfin.serving.errors import RequestError


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    kind: str
    call: Callable | None
    protocol: str | None = None     # "simple" | "tfserving" | "v2" for prediction endpoints
    tag: str = ""
    summary: str = ""
    response: str | None = None     # schemas.<name> of the 200 body (OpenAPI)
    body: str | None = None         # schemas.<name> of the request body (OpenAPI)
    slow: bool = False              # the ASGI app runs it in a thread (drift reports)
    extra: dict = field(default_factory=dict)


def _version_number(params) -> str | None:
    v = params.get("version")
    if v is not None and not v.isdigit():
        raise RequestError(400, f"version must be a number, got {v!r}")
    return v


def _tf(service, p, h):
    return lambda ex, body: service.plan_tfserving(ex, p["name"], p.get("version"), p.get("label"), body)


def _v2(service, p, h):
    hl = h.get("inference-header-content-length")
    return lambda ex, body: service.plan_v2(ex, p["name"], p.get("version"), body, hl)


def _explain(service, p, h):
    path_model = None if "name" not in p else (p["name"], _version_number(p))
    return lambda ex, body: service.plan_explain(ex, body, path_model)


def _v2_explain(service, p, h):
    hl = h.get("inference-header-content-length")
    return lambda ex, body: service.plan_explain_v2(ex, p["name"], p.get("version"), body, hl)


def _live(service, key, p):
    from maasfin.serving.service import Reply
    return Reply(200, codec.dumps({"live": True}))


E = Endpoint
ENDPOINTS: tuple[Endpoint, ...] = (
    # simple
    E("simple_predict", "POST", "/v1/predict", "predict", lambda s, p, h: s.plan_simple, "simple",
      "simple", "Predict (simple JSON)", "SimplePredictResponse", "SimplePredictRequest"),
    E("simple_explain", "POST", "/v1/explain", "explain", _explain, "simple",
      "simple", "Predict and explain: attributions and reason codes"),
    # TF Serving REST (and KServe v1-style explain)
    E("tf_explain", "POST", "/v1/models/{name}:explain", "explain", _explain, "tfserving",
      "TF Serving", "Explain, newest version (KServe v1 style)"),
    E("tf_explain_version", "POST", "/v1/models/{name}/versions/{version}:explain", "explain", _explain,
      "tfserving", "TF Serving", "Explain, one version"),
    E("tf_predict", "POST", "/v1/models/{name}:predict", "predict", _tf, "tfserving",
      "TF Serving", "Predict, newest version", "TFPredictResponse", "TFPredictRequest"),
    E("tf_predict_version", "POST", "/v1/models/{name}/versions/{version}:predict", "predict", _tf, "tfserving",
      "TF Serving", "Predict, one version", "TFPredictResponse", "TFPredictRequest"),
    E("tf_predict_label", "POST", "/v1/models/{name}/labels/{label}:predict", "predict", _tf, "tfserving",
      "TF Serving", "Predict, labelled version", "TFPredictResponse", "TFPredictRequest"),
    E("tf_status", "GET", "/v1/models/{name}", "read",
      lambda s, k, p: s.tf_status(k, p["name"]), None, "TF Serving", "Version states", "TFStatusResponse"),
    E("tf_status_version", "GET", "/v1/models/{name}/versions/{version}", "read",
      lambda s, k, p: s.tf_status(k, p["name"], p["version"]), None, "TF Serving", "One version's state",
      "TFStatusResponse"),
    E("tf_metadata", "GET", "/v1/models/{name}/metadata", "read",
      lambda s, k, p: s.tf_metadata(k, p["name"]), None, "TF Serving", "Signature of the newest version"),
    E("tf_metadata_version", "GET", "/v1/models/{name}/versions/{version}/metadata", "read",
      lambda s, k, p: s.tf_metadata(k, p["name"], p["version"]), None, "TF Serving", "Signature of a version"),
    E("tf_metadata_label", "GET", "/v1/models/{name}/labels/{label}/metadata", "read",
      lambda s, k, p: s.tf_metadata(k, p["name"], None, p["label"]), None, "TF Serving",
      "Signature of a labelled version"),
    # operations
    E("drift", "GET", "/v1/models/{name}/drift", "read",
      lambda s, k, p: s.drift_report(k, p["name"]), None, "operations",
      "Drift of the newest version's recent inputs", slow=True),
    E("drift_version", "GET", "/v1/models/{name}/versions/{version}/drift", "read",
      lambda s, k, p: s.drift_report(k, p["name"], p["version"]), None, "operations",
      "Drift of one version's recent inputs", slow=True),
    # Open Inference Protocol v2
    E("v2_server", "GET", "/v2", "read", lambda s, k, p: s.v2_server_metadata(), None, "v2", "Server metadata",
      "V2ServerMetadata"),
    E("v2_live", "GET", "/v2/health/live", "open", _live, None, "v2", "Liveness (no key needed)"),
    E("v2_ready", "GET", "/v2/health/ready", "open", lambda s, k, p: s.ready_reply(), None, "v2",
      "Readiness: every model has a loaded version (no key needed)"),
    E("v2_model", "GET", "/v2/models/{name}", "read", lambda s, k, p: s.v2_model_metadata(k, p["name"]), None,
      "v2", "Model metadata", "V2ModelMetadata"),
    E("v2_model_version", "GET", "/v2/models/{name}/versions/{version}", "read",
      lambda s, k, p: s.v2_model_metadata(k, p["name"], p["version"]), None, "v2", "Model version metadata",
      "V2ModelMetadata"),
    E("v2_model_ready", "GET", "/v2/models/{name}/ready", "read",
      lambda s, k, p: s.v2_model_ready(k, p["name"]), None, "v2", "Model readiness"),
    E("v2_model_version_ready", "GET", "/v2/models/{name}/versions/{version}/ready", "read",
      lambda s, k, p: s.v2_model_ready(k, p["name"], p["version"]), None, "v2", "Model version readiness"),
    E("v2_infer", "POST", "/v2/models/{name}/infer", "predict", _v2, "v2",
      "v2", "Inference (JSON or binary tensors)", "V2InferResponse", "V2InferRequest"),
    E("v2_infer_version", "POST", "/v2/models/{name}/versions/{version}/infer", "predict", _v2, "v2",
      "v2", "Inference on one version", "V2InferResponse", "V2InferRequest"),
    E("v2_explain", "POST", "/v2/models/{name}/explain", "explain", _v2_explain, "v2",
      "v2", "Explain (maasfin extension): the output, attributions and reason codes as tensors"),
    E("v2_explain_version", "POST", "/v2/models/{name}/versions/{version}/explain", "explain", _v2_explain, "v2",
      "v2", "Explain one version (maasfin extension)"),
    E("metrics", "GET", "/metrics", "metrics", None, None, "operations", "Prometheus metrics"),
)

OPEN_PATHS = frozenset(e.path for e in ENDPOINTS if e.kind == "open")
