"""TensorFlow Serving's REST API: predict (row and columnar formats), version status, metadata.

- POST /v1/models/{name}[/versions/{v} | /labels/{l}]:predict
  {"instances": [...]} (row format, answered {"predictions"}) or {"inputs": ...} (columnar,
  answered {"outputs"}), with an optional "signature_name": "serving_default";
- GET  /v1/models/{name}[/versions/{v}]: version states; GET .../metadata: the signature_def;
- POST /v1/models/{name}[/versions/{v}]:explain (KServe v1 style): {"instances", "top_k", "steps"},
  answered as the simple protocol's /v1/explain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from maasfin.serving import codec, explaining, routing
from maasfin.serving.endpoints import Endpoint, url_version
from maasfin.serving.errors import RequestError, bad_request
from maasfin.serving.exchange import Exchange, Plan, Reply, json_reply
from maasfin.serving.protocols import simple


@dataclass(frozen=True)
class Answer:
    """A TF Serving predict reply: {key: outputs}, key "predictions" (row format) or "outputs"."""

    key: str

    def encode(self, y: np.ndarray) -> Reply:
        return Reply(200, codec.dumps_finite({self.key: y.tolist()}))


# -- decode ----------------------------------------------------------------------------------------
def decode(body: dict, sig, model: str) -> tuple[list[np.ndarray], str]:
    """(inputs, "instances" | "inputs") from a TF Serving predict request."""
    unknown = sorted(k for k in body if k not in ("instances", "inputs", "signature_name"))
    if unknown:
        raise bad_request(
            f"unknown field(s) {unknown} in the request; TF Serving's predict takes "
            "'instances' (row format) or 'inputs' (columnar format), and 'signature_name'"
        )
    sn = body.get("signature_name", "serving_default")
    if sn != "serving_default":
        raise bad_request(f"signature_name {codec.show(sn)} is unknown; the only signature is 'serving_default'")
    if "instances" in body and "inputs" in body:
        raise bad_request("the request has both 'instances' and 'inputs'; send one of them")
    if "instances" in body:
        return _instances(body["instances"], sig, model), "instances"
    if "inputs" in body:
        return _inputs(body["inputs"], sig, model), "inputs"
    raise bad_request("the request needs 'instances' (row format) or 'inputs' (columnar format)")


def _instances(instances, sig, model: str) -> list[np.ndarray]:
    field = "instances"
    if not isinstance(instances, list):
        raise bad_request(f"{field} must be a list (one element per row), got {codec.json_type(instances)}")
    if not instances:
        raise codec.no_rows(field)
    names = sig.input_names()
    if isinstance(instances[0], dict):
        keys = set(instances[0])
        if keys == set(names):  # named inputs, one value per input per row
            xs = []
            for spec in sig.inputs:
                column = []
                for i, inst in enumerate(instances):
                    if not isinstance(inst, dict):
                        raise bad_request(f"{field}[{i}] is {codec.json_type(inst)}, but {field}[0] is an object")
                    if set(inst) != set(names):
                        raise bad_request(f"{field}[{i}] has keys {sorted(inst)}, expected the inputs {names}")
                    column.append(inst[spec.name])
                where = f"{field}[*][{json.dumps(spec.name)}]"
                arr = codec.numbers_to_f32(
                    column, field, lambda p, s=spec.name: f"{field}[{p[0]}][{json.dumps(s)}]" + codec.index_text(p[1:])
                )
                xs.append(codec.check_shape(arr, spec, where, model))
            return xs
        if len(sig.inputs) == 1 and sig.feature_names is not None:
            return [codec.records_tensor(instances, sig.feature_names, field)]
        if len(sig.inputs) == 1:
            raise bad_request(
                f"{field}[0] has keys {sorted(keys)}, but model '{model}' has input {names} and no "
                "feature names: send each instance as a list of numbers"
            )
        raise bad_request(f"{field}[0] has keys {sorted(keys)}, expected the model's inputs {names}")
    if len(sig.inputs) > 1:
        raise bad_request(
            f"model '{model}' has inputs {names}: send each instance as an object with one value per input"
        )
    return [codec.check_shape(codec.numbers_to_f32(instances, field), sig.inputs[0], field, model)]


def _inputs(inputs, sig, model: str) -> list[np.ndarray]:
    field = "inputs"
    names = sig.input_names()
    if isinstance(inputs, dict):
        if set(inputs) == set(names) or len(sig.inputs) > 1:
            return codec.named_tensors(inputs, sig, model, field)
        if sig.feature_names is not None:
            return [codec.columns_tensor(inputs, sig.feature_names, field)]
        raise bad_request(f"{field} has keys {sorted(inputs)}, expected the model's input {names}")
    if len(sig.inputs) > 1:
        raise bad_request(f"model '{model}' has inputs {names}: send 'inputs' as an object keyed by input name")
    if not isinstance(inputs, list):
        raise bad_request(
            f"{field} must be a list of rows or an object keyed by input name, got {codec.json_type(inputs)}"
        )
    if not inputs:
        raise codec.no_rows(field)
    return [codec.check_shape(codec.numbers_to_f32(inputs, field), sig.inputs[0], field, model)]


def decode_request(obj: dict, v) -> tuple[list[np.ndarray], Answer]:
    """(inputs, answer) of a predict request for served version `v` (Service.plan calls this)."""
    if v.signature.raw:  # records or columns, converted by the model's data boundary
        mode = "instances" if "instances" in obj else "inputs"
        if set(obj) - {"signature_name"} != {mode}:
            raise bad_request("the request needs exactly one of 'instances' (records) and 'inputs' (columns)")
        xs = codec.model_inputs(obj[mode], v.signature, v.model, mode)
    else:
        xs, mode = decode(obj, v.signature, v.name)
    return xs, Answer("predictions" if mode == "instances" else "outputs")


# -- plans -----------------------------------------------------------------------------------------
def plan(service, ex, body: bytes, params, headers) -> Plan:
    """POST /v1/models/{name}[/versions/{v} | /labels/{l}]:predict."""
    ex.routing_key = routing.routing_key(headers.get("x-routing-key"), "header X-Routing-Key")
    version = url_version(params.get("version"))
    obj = codec.parse_json(body)
    return service.plan(ex, params["name"], version, params.get("label"), decode_request, obj)


def plan_explain(service, ex, body: bytes, params, headers) -> Plan:
    """POST /v1/models/{name}[/versions/{v}]:explain: {"instances": rows or records} and the
    explanation options, planned as the simple protocol's /v1/explain."""
    ex.routing_key = routing.routing_key(headers.get("x-routing-key"), "header X-Routing-Key")
    version = url_version(params.get("version"))  # ASCII digits only: "١" or "²" is not a version
    obj = codec.parse_json(body)
    if "instances" not in obj:
        raise bad_request("the request needs 'instances': a list of rows or records")
    unknown = sorted(k for k in obj if k not in ("instances", "top_k", "steps"))
    if unknown:
        raise bad_request(
            f"unknown field(s) {unknown}; the request takes 'instances' and optionally 'top_k' and 'steps'"
        )
    options = explaining.options(obj, "")
    request = {
        "model_name": params["name"],
        "input_data": obj["instances"],
        **({"model_version": int(version)} if version is not None else {}),
    }
    return simple.plan_request(service, ex, request, options)


# -- status and metadata ---------------------------------------------------------------------------
def status(service, key, params) -> Reply:
    """GET /v1/models/{name}[/versions/{v}]: the state of each version (or of one)."""
    name, version = params["name"], params.get("version")
    service.authorize(key, name)
    rows = service.repository.status(name)["versions"]
    if version is not None:
        url_version(version)
        rows = [r for r in rows if r["version"] == int(version)]
        if not rows:
            raise RequestError(404, f"model '{name}' has no version {int(version)}")
    out = []
    for r in rows:
        ok = r["state"] == "AVAILABLE"
        out.append(
            {
                "version": str(r["version"]),
                "state": "AVAILABLE" if ok else "END",
                "status": {"error_code": "OK" if r["error"] is None else "UNKNOWN", "error_message": r["error"] or ""},
            }
        )
    return json_reply({"model_version_status": out})


def _tensor_info(spec) -> dict:
    return {
        "dtype": "DT_FLOAT",
        "name": spec.name,
        "tensor_shape": {
            "dim": [{"size": "-1", "name": ""}] + [{"size": str(d), "name": ""} for d in spec.shape],
            "unknown_rank": False,
        },
    }


def metadata(service, key, params) -> Reply:
    """GET /v1/models/{name}[/versions/{v} | /labels/{l}]/metadata: the serving_default signature."""
    ex = Exchange("tfserving", "GET", "", None, key=key)
    with service.lease(ex, params["name"], url_version(params.get("version")), params.get("label")) as v:
        sig = v.signature
        sd = {
            "inputs": {s.name: _tensor_info(s) for s in sig.inputs},
            "outputs": {sig.output.name: _tensor_info(sig.output)},
            "method_name": "tensorflow/serving/predict",
        }
        return json_reply(
            {
                "model_spec": {"name": v.name, "signature_name": "", "version": str(v.version)},
                "metadata": {"signature_def": {"signature_def": {"serving_default": sd}}},
                "maasfin": {
                    "feature_names": None if sig.feature_names is None else list(sig.feature_names),
                    "user_metadata": v.metadata,
                },
            }
        )


_TF = "TF Serving"
_PREDICT = dict(response="TFPredictResponse", body="TFPredictRequest")
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "tf_explain",
        "POST",
        "/v1/models/{name}:explain",
        "explain",
        plan_explain,
        "tfserving",
        _TF,
        "Explain, newest version (KServe v1 style)",
    ),
    Endpoint(
        "tf_explain_version",
        "POST",
        "/v1/models/{name}/versions/{version}:explain",
        "explain",
        plan_explain,
        "tfserving",
        _TF,
        "Explain, one version",
    ),
    Endpoint(
        "tf_predict",
        "POST",
        "/v1/models/{name}:predict",
        "predict",
        plan,
        "tfserving",
        _TF,
        "Predict, newest version",
        **_PREDICT,
    ),
    Endpoint(
        "tf_predict_version",
        "POST",
        "/v1/models/{name}/versions/{version}:predict",
        "predict",
        plan,
        "tfserving",
        _TF,
        "Predict, one version",
        **_PREDICT,
    ),
    Endpoint(
        "tf_predict_label",
        "POST",
        "/v1/models/{name}/labels/{label}:predict",
        "predict",
        plan,
        "tfserving",
        _TF,
        "Predict, labelled version",
        **_PREDICT,
    ),
    Endpoint("tf_status", "GET", "/v1/models/{name}", "read", status, None, _TF, "Version states", "TFStatusResponse"),
    Endpoint(
        "tf_status_version",
        "GET",
        "/v1/models/{name}/versions/{version}",
        "read",
        status,
        None,
        _TF,
        "One version's state",
        "TFStatusResponse",
    ),
    Endpoint(
        "tf_metadata",
        "GET",
        "/v1/models/{name}/metadata",
        "read",
        metadata,
        None,
        _TF,
        "Signature of the newest version",
    ),
    Endpoint(
        "tf_metadata_version",
        "GET",
        "/v1/models/{name}/versions/{version}/metadata",
        "read",
        metadata,
        None,
        _TF,
        "Signature of a version",
    ),
    Endpoint(
        "tf_metadata_label",
        "GET",
        "/v1/models/{name}/labels/{label}/metadata",
        "read",
        metadata,
        None,
        _TF,
        "Signature of a labelled version",
    ),
)
