"""The simple JSON protocol: POST /v1/predict and /v1/explain, {"model_name", "input_data"}.

    {"model_name": "credit", "model_version": 2 | "stable", "input_data": <inputs>}

`input_data` is one record keyed by feature name, a list of records, a list of rows (lists of
numbers), or, for a model of several inputs, an object of rows per input. The answer is
{"model_name", "model_version", "predictions"}; /v1/explain adds "attributions" and "reasons".
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from maasfin.serving import codec, explaining, routing
from maasfin.serving.endpoints import Endpoint
from maasfin.serving.errors import bad_request
from maasfin.serving.exchange import Plan, Reply, json_reply
from maasfin.serving.repository import LABEL_RE, VERSION_RE

FIELDS = ("model_name", "model_version", "input_data", "routing_key")


@dataclass(frozen=True)
class Answer:
    """How a simple request is answered, for model `name` version `version`."""

    name: str
    version: int
    request_id: str | None = None  # also the X-Request-ID header; outcomes address rows by it

    def encode(self, y: np.ndarray) -> Reply:
        body = {"model_name": self.name, "model_version": self.version, "predictions": y.tolist()}
        if self.request_id is not None:
            body["request_id"] = self.request_id
        return Reply(200, codec.dumps_finite(body))

    def explanation(self, y: np.ndarray, attributions: np.ndarray, names: list[str], reasons: list) -> Reply:
        return json_reply(
            {
                "model_name": self.name,
                "model_version": self.version,
                "predictions": y.tolist(),
                "attributions": [dict(zip(names, map(float, row))) for row in attributions],
                "reasons": reasons,
            }
        )


def model_version(mv) -> tuple[int | None, str | None]:
    """(version, label) from the request's "model_version": a version number or a label name."""
    if mv is None:
        return None, None
    if type(mv) is int and mv >= 0:
        return mv, None
    if isinstance(mv, str) and VERSION_RE.match(mv):
        return int(mv), None
    if isinstance(mv, str) and LABEL_RE.match(mv):
        return None, mv
    raise bad_request(f"model_version must be a version number or a label name, got {mv!r}")


def _need_feature_names(field: str, model: str, spec):
    return bad_request(
        f"{field} holds records (objects), but model '{model}' has no feature names (it was not "
        f"trained on a DataFrame): send rows instead, each a list of {spec.width} number(s)"
    )


def decode(input_data, v, field: str = "input_data") -> list[np.ndarray]:
    """The validated inputs of served version `v` from `input_data`."""
    sig = v.signature
    if sig.raw:
        return codec.model_inputs(input_data, sig, v.model, field)
    model = v.name
    if len(sig.inputs) > 1:
        if not isinstance(input_data, dict):
            raise bad_request(
                f"model '{model}' has {len(sig.inputs)} inputs {sig.input_names()}: send "
                f"input_data as an object with one list of rows per input"
            )
        return codec.named_tensors(input_data, sig, model, field)
    spec = sig.inputs[0]
    if isinstance(input_data, dict):
        if sig.feature_names is None:
            raise _need_feature_names(field, model, spec)
        return [codec.records_tensor([input_data], sig.feature_names, field, single=True)]
    if not isinstance(input_data, list):
        raise bad_request(
            f"{field} must be an object (one record), a list of records or a list of rows, "
            f"got {codec.json_type(input_data)}"
        )
    if not input_data:
        raise codec.no_rows(field)
    if isinstance(input_data[0], dict):
        if sig.feature_names is None:
            raise _need_feature_names(field, model, spec)
        return [codec.records_tensor(input_data, sig.feature_names, field)]
    return [codec.check_shape(codec.numbers_to_f32(input_data, field), spec, field, model)]


def decode_request(obj: dict, v) -> tuple[list[np.ndarray], Answer]:
    """(inputs, answer) of a request object for served version `v` (Service.plan calls this)."""
    if "input_data" not in obj:
        raise bad_request("the request has no 'input_data' (a record, a list of records or a list of rows)")
    return decode(obj["input_data"], v), Answer(v.name, v.version)


def plan_request(service, ex, obj: dict, explain: dict | None = None) -> Plan:
    """The plan of a parsed simple request (explanation options already popped)."""
    unknown = sorted(k for k in obj if k not in FIELDS)
    if unknown:
        raise bad_request(
            f"unknown field(s) {unknown}; the request takes 'model_name', 'input_data' "
            "and optionally 'model_version' (a version number or a label) and 'routing_key'"
        )
    if "model_name" not in obj:
        raise bad_request("the request has no 'model_name'")
    if "routing_key" in obj:
        ex.routing_key = routing.routing_key(obj["routing_key"], "routing_key")
    version, label = model_version(obj.get("model_version"))
    plan = service.plan(ex, obj["model_name"], version, label, decode_request, obj, explain)
    plan.answer = replace(plan.answer, request_id=ex.request_id)
    return plan


def plan(service, ex, body: bytes, params, headers) -> Plan:
    """POST /v1/predict."""
    ex.routing_key = routing.routing_key(headers.get("x-routing-key"), "header X-Routing-Key")
    return plan_request(service, ex, codec.parse_json(body))


def plan_explain(service, ex, body: bytes, params, headers) -> Plan:
    """POST /v1/explain: the simple call plus {"top_k": 1..20 (4), "steps": 1..512 (64)}."""
    ex.routing_key = routing.routing_key(headers.get("x-routing-key"), "header X-Routing-Key")
    obj = codec.parse_json(body)
    options = explaining.options(obj, "")
    return plan_request(service, ex, obj, options)


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "simple_predict",
        "POST",
        "/v1/predict",
        "predict",
        plan,
        "simple",
        "simple",
        "Predict (simple JSON)",
        "SimplePredictResponse",
        "SimplePredictRequest",
    ),
    Endpoint(
        "simple_explain",
        "POST",
        "/v1/explain",
        "explain",
        plan_explain,
        "simple",
        "simple",
        "Predict and explain: attributions and reason codes",
    ),
)
