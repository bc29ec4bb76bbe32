"""The Open Inference Protocol v2 (KServe): inference with JSON or binary tensors, and metadata.

- POST /v2/models/{name}[/versions/{v}]/infer
  {"id", "parameters", "inputs": [{name, shape, datatype, data | parameters.binary_data_size}],
  "outputs": [{name, parameters.binary_data}]}, with the binary tensor extension: the body is a
  JSON header of `Inference-Header-Content-Length` bytes followed by the tensors' bytes;
- POST .../explain (a maasfin extension): an inference request whose parameters may hold "top_k"
  and "steps", answered with the output, "attributions" and "reasons" tensors;
- GET /v2, /v2/health/live, /v2/health/ready, /v2/models/{name}[/versions/{v}][/ready].
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

import maasfin
from maasfin import data as data_module
from maasfin.serving import codec, explaining, routing
from maasfin.serving.endpoints import Endpoint, url_version
from maasfin.serving.errors import RequestError, bad_request
from maasfin.serving.exchange import Exchange, Plan, Reply, json_reply
from maasfin.serving.protocols import v2_raw

DTYPES = {
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "FP16": np.dtype("<f2"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
}
_KNOWN = set(DTYPES) | {"BOOL", "BYTES", "BF16"}
MAX_ELEMENTS = 2**31 - 1  # values in one tensor: far above any body limit, far below int64 overflow


@dataclass(frozen=True)
class Answer:
    """How an inference request is answered: its id, output tensor name and binary_data choice."""

    name: str
    version: int
    id: str | None
    binary_output: bool
    output_name: str

    def _head(self) -> dict:
        resp = {"model_name": self.name, "model_version": str(self.version)}
        if self.id is not None:
            resp["id"] = self.id
        return resp

    def encode(self, y: np.ndarray) -> Reply:
        out = {"name": self.output_name, "datatype": "FP32", "shape": list(y.shape)}
        resp = self._head()
        if self.binary_output:
            raw = np.ascontiguousarray(y, dtype="<f4").tobytes()
            out["parameters"] = {"binary_data_size": len(raw)}
            resp["outputs"] = [out]
            header = codec.dumps_finite(resp)
            return Reply(
                200, header + raw, {"Inference-Header-Content-Length": str(len(header))}, "application/octet-stream"
            )
        out["data"] = y.reshape(-1).tolist()
        resp["outputs"] = [out]
        return Reply(200, codec.dumps_finite(resp))

    def explanation(self, y: np.ndarray, attributions: np.ndarray, names: list[str], reasons: list) -> Reply:
        """The model's output tensor, then "attributions" (FP32, rows x features,
        parameters.feature_names) and "reasons" (BYTES, one JSON document per row: that row's
        reason codes); always JSON."""
        resp = self._head()
        resp["outputs"] = [
            {"name": self.output_name, "datatype": "FP32", "shape": list(y.shape), "data": y.reshape(-1).tolist()},
            {
                "name": "attributions",
                "datatype": "FP32",
                "shape": list(attributions.shape),
                "data": attributions.reshape(-1).tolist(),
                "parameters": {"feature_names": list(names)},
            },
            {
                "name": "reasons",
                "datatype": "BYTES",
                "shape": [len(reasons)],
                "data": [json.dumps(r, separators=(",", ":")) for r in reasons],
            },
        ]
        return Reply(200, codec.dumps_finite(resp))


# -- decode ----------------------------------------------------------------------------------------
def split_binary(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """(JSON header, binary section) per the binary tensor extension."""
    if header_length is None:
        return body, b""
    try:
        n = int(header_length.strip())
    except ValueError:
        raise bad_request(
            f"the Inference-Header-Content-Length header is {header_length!r}, not a number of bytes"
        ) from None
    if not 0 < n <= len(body):
        raise bad_request(
            f"the Inference-Header-Content-Length header is {n}, but the body has {len(body)} "
            "bytes; it must be the length of the JSON header within the body"
        )
    return body[:n], body[n:]


def _tensor(
    t, k: int, specs: dict, seen: dict, sig, model: str, binary: bytes, offset: int
) -> tuple[str, np.ndarray, int]:
    """(name, float32 array, offset after it) of inputs[k]; `seen`: the inputs before it."""
    where = f"inputs[{k}]"
    if not isinstance(t, dict):
        raise bad_request(f"{where} must be an object {{name, shape, datatype, data}}, got {codec.json_type(t)}")
    extra = sorted(x for x in t if x not in ("name", "shape", "datatype", "data", "parameters"))
    if extra:
        raise bad_request(f"{where} has unknown field(s) {extra}")
    name = t.get("name")
    if not isinstance(name, str):
        raise bad_request(f"{where}.name must be a string, got {codec.json_type(name)}")
    where = f"input '{name}'"
    if name not in specs:
        raise bad_request(f"unknown input '{name}'; model '{model}' has input(s) {sig.input_names()}")
    if name in seen:
        raise bad_request(f"{where} is given twice")
    spec = specs[name]
    shape = t.get("shape")
    if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
        raise bad_request(f"{where}: 'shape' must be a list of non-negative integers, got {codec.show(shape)}")
    expected = [-1, *spec.shape]
    if len(shape) != len(expected) or tuple(shape[1:]) != spec.shape:
        raise bad_request(f"{where} has shape {shape}, but model '{model}' expects {expected}")
    if shape[0] == 0:
        raise bad_request(f"{where} has no rows (shape {shape})")
    datatype = t.get("datatype")
    if not isinstance(datatype, str):
        raise bad_request(f"{where}: 'datatype' must be a string such as \"FP32\", got {codec.show(datatype)}")
    if datatype not in DTYPES:
        what = "is not a numeric datatype" if datatype in _KNOWN else "is not a known datatype"
        raise bad_request(
            f"{where} has datatype {datatype!r}, which {what}; model '{model}' takes FP32 "
            f"(also accepted: {', '.join(d for d in DTYPES if d != 'FP32')})"
        )
    dtype = DTYPES[datatype]
    count = math.prod(shape)  # exact: a product of huge dimensions must not wrap around
    if count > MAX_ELEMENTS:
        raise bad_request(f"{where} has shape {shape}, {count} values: more than any request can carry")
    tparams = t.get("parameters", {})
    if not isinstance(tparams, dict):
        raise bad_request(f"{where}: 'parameters' must be an object")
    size = tparams.get("binary_data_size")
    if size is not None:
        if "data" in t:
            raise bad_request(f"{where} has both 'data' and binary data; send one")
        if type(size) is not int or size < 0:
            raise bad_request(f"{where}: binary_data_size must be a non-negative integer, got {codec.show(size)}")
        if size != count * dtype.itemsize:
            raise bad_request(
                f"{where}: binary_data_size is {size} bytes, but shape {shape} of {datatype} "
                f"needs {count * dtype.itemsize}"
            )
        if offset + size > len(binary):
            raise bad_request(
                f"{where}: the request's binary data ends after {len(binary)} bytes, "
                f"but the inputs declare at least {offset + size}"
            )
        arr = np.frombuffer(binary, dtype=dtype, count=count, offset=offset).reshape(shape)
        offset += size
    else:
        arr = _json_data(t, where, datatype, dtype, shape, count)
    return name, _to_model_f32(arr, where), offset


def _json_data(t: dict, where: str, datatype: str, dtype, shape: list, count: int) -> np.ndarray:
    if "data" not in t:
        raise bad_request(f"{where} has no 'data' (and no binary_data_size parameter)")
    values = t["data"]
    if not isinstance(values, list):
        raise bad_request(f"{where}: 'data' must be a list of numbers, got {codec.json_type(values)}")
    bad = codec.find_non_number(values)
    if bad is not None and isinstance(bad[1], codec.NonFinite):
        raise bad_request(codec.non_finite_message(f"{where}: data{codec.index_text(bad[0])}", bad[1]))
    if bad is not None:
        raise bad_request(f"{where}: data{codec.index_text(bad[0])} is {codec.show(bad[1])}, expected a number")
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        for p, v in codec.flatten_with_paths(values):
            if type(v) is not int:
                raise bad_request(f"{where} is {datatype}, but data{codec.index_text(p)} is {v!r}, not an integer")
            if not info.min <= v <= info.max:
                raise bad_request(f"{where}: data{codec.index_text(p)} is {v}, outside the range of {datatype}")
    try:
        arr = np.array(values, dtype=np.float64)
    except ValueError:
        raise bad_request(f"{where}: 'data' is not a rectangular array of numbers") from None
    except OverflowError:
        raise bad_request(f"{where}: 'data' holds a number outside the float32 range (about ±3.4e38)") from None
    if arr.size != count:
        raise bad_request(f"{where} has {arr.size} values in 'data', but its shape {shape} needs {count}")
    return arr.reshape(shape)


def _to_model_f32(arr: np.ndarray, where: str) -> np.ndarray:
    """float32, C-contiguous, finite, within float32's range; errors name the row and column."""
    flat = arr.reshape(arr.shape[0], -1)
    try:
        out, _ = data_module.to_float_array(flat, where)
    except (ValueError, TypeError) as e:
        raise bad_request(str(e)) from None
    return np.ascontiguousarray(out.reshape(arr.shape))


def _binary_output(body: dict, params: dict, sig) -> bool:
    outputs = body.get("outputs")
    default = params.get("binary_data_output", False)
    if not isinstance(default, bool):
        raise bad_request("parameters.binary_data_output must be true or false")
    if outputs is None:
        return default
    if not isinstance(outputs, list):
        raise bad_request(f"'outputs' must be a list of {{name, parameters}}, got {codec.json_type(outputs)}")
    binary = default
    for k, o in enumerate(outputs):
        if not isinstance(o, dict) or not isinstance(o.get("name"), str):
            raise bad_request(f"outputs[{k}] must be an object with a string 'name'")
        if o["name"] != sig.output.name:
            raise bad_request(f"unknown output '{o['name']}'; the model's output is '{sig.output.name}'")
        oparams = o.get("parameters", {})
        if not isinstance(oparams, dict):
            raise bad_request(f"outputs[{k}].parameters must be an object")
        if oparams.get("classification"):
            raise bad_request("the classification extension is not supported")
        b = oparams.get("binary_data", default)
        if not isinstance(b, bool):
            raise bad_request(f"outputs[{k}].parameters.binary_data must be true or false")
        binary = b
    return binary


def _envelope(body: dict) -> tuple[str | None, dict, list]:
    """(id, parameters, inputs) of an inference request, checked."""
    unknown = sorted(k for k in body if k not in ("id", "parameters", "inputs", "outputs"))
    if unknown:
        raise bad_request(f"unknown field(s) {unknown} in the inference request")
    rid = body.get("id")
    if rid is not None and not isinstance(rid, str):
        raise bad_request(f"'id' must be a string, got {codec.json_type(rid)}")
    params = body.get("parameters", {})
    if not isinstance(params, dict):
        raise bad_request(f"'parameters' must be an object, got {codec.json_type(params)}")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise bad_request("'inputs' must be a non-empty list of tensors {name, shape, datatype, data}")
    return rid, params, inputs


def _all_read(by_name: dict, sig, model: str, binary: bytes, offset: int) -> None:
    missing = [n for n in sig.input_names() if n not in by_name]
    if missing:
        raise bad_request(f"missing input(s) {missing}; model '{model}' has input(s) {sig.input_names()}")
    if offset != len(binary):
        raise bad_request(f"the request has {len(binary)} bytes of binary data, but its inputs declare {offset}")


def decode(body: dict, binary: bytes, v) -> tuple[list[np.ndarray], Answer]:
    """(inputs, answer) of an inference request (JSON header `body`, binary section `binary`)
    for served version `v`."""
    sig, model = v.signature, v.name
    rid, params, inputs = _envelope(body)
    by_name: dict[str, np.ndarray] = {}
    specs = {s.name: s for s in sig.inputs}
    offset = 0
    for k, t in enumerate(inputs):
        name, arr, offset = _tensor(t, k, specs, by_name, sig, model, binary, offset)
        by_name[name] = arr
    _all_read(by_name, sig, model, binary, offset)
    xs = [by_name[n] for n in sig.input_names()]
    codec.same_rows(xs, sig, "inputs")
    return xs, Answer(v.name, v.version, rid, _binary_output(body, params, sig), sig.output.name)


def decode_raw(body: dict, binary: bytes, v) -> tuple[list[np.ndarray], Answer]:
    """(inputs, answer) for a raw-feature model: one [N] or [N, 1] tensor per feature (BYTES for
    strings), converted by the model's data boundary (see v2_raw)."""
    sig, model = v.signature, v.name
    rid, params, inputs = _envelope(body)
    by_name: dict = {}
    shapes: dict = {}
    specs = {s.name: s for s in sig.inputs}
    offset = 0
    for k, t in enumerate(inputs):
        name, column, offset = v2_raw.raw_tensor(t, k, specs, by_name, sig, model, binary, offset, DTYPES)
        by_name[name], shapes[name] = column, t["shape"]
    _all_read(by_name, sig, model, binary, offset)
    xs = v2_raw.model_columns(by_name, shapes, v)
    return xs, Answer(v.name, v.version, rid, _binary_output(body, params, sig), sig.output.name)


@dataclass(frozen=True)
class Request:
    """A parsed inference request: JSON header and binary section."""

    header: dict
    binary: bytes


def decode_request(request: Request, v) -> tuple[list[np.ndarray], Answer]:
    """Service.plan calls this with the leased version `v`."""
    if v.signature.raw:
        return decode_raw(request.header, request.binary, v)
    return decode(request.header, request.binary, v)


# -- plans -----------------------------------------------------------------------------------------
def _parse(body: bytes, headers) -> tuple[dict, bytes]:
    header_length = headers.get("inference-header-content-length")
    head, binary = split_binary(body, header_length)
    return codec.parse_json(head, "inference request header" if header_length is not None else "request body"), binary


def plan(service, ex, body: bytes, params, headers) -> Plan:
    """POST /v2/models/{name}[/versions/{v}]/infer."""
    ex.routing_key = routing.routing_key(headers.get("x-routing-key"), "header X-Routing-Key")
    version = url_version(params.get("version"))
    header, binary = _parse(body, headers)
    request = Request(header, binary)
    return service.plan(ex, params["name"], version, None, decode_request, request)


def plan_explain(service, ex, body: bytes, params, headers) -> Plan:
    """POST /v2/models/{name}[/versions/{v}]/explain: "top_k" and "steps" in `parameters`."""
    ex.routing_key = routing.routing_key(headers.get("x-routing-key"), "header X-Routing-Key")
    version = url_version(params.get("version"))
    header, binary = _parse(body, headers)
    p = header.get("parameters")
    options = explaining.options(dict(p) if isinstance(p, dict) else {}, "parameters.")
    return service.plan(ex, params["name"], version, None, decode_request, Request(header, binary), options)


# -- metadata and health ---------------------------------------------------------------------------
def server_metadata(service, key, params) -> Reply:
    return json_reply({"name": "maasfin", "version": maasfin.__version__, "extensions": ["binary_tensor_data"]})


def model_metadata(service, key, params) -> Reply:
    name, version = params["name"], url_version(params.get("version"))
    with service.lease(Exchange("v2", "GET", "", None, key=key), name, version) as v:
        sig = v.signature
        versions = [str(r["version"]) for r in service.repository.status(name)["versions"] if r["state"] == "AVAILABLE"]
        return json_reply(
            {
                "name": v.name,
                "versions": versions,
                "platform": "maasfin",
                "inputs": [
                    {"name": s.name, "datatype": "BYTES" if s.dtype == "string" else "FP32", "shape": [-1, *s.shape]}
                    for s in sig.inputs
                ],
                "outputs": [{"name": sig.output.name, "datatype": "FP32", "shape": [-1, *sig.output.shape]}],
                "parameters": {
                    "version": str(v.version),
                    "feature_names": None if sig.feature_names is None else list(sig.feature_names),
                },
            }
        )


def model_ready(service, key, params) -> Reply:
    name = params["name"]
    service.authorize(key, name)
    version = url_version(params.get("version"))
    if not service.repository.has_model(name):
        raise RequestError(404, f"model '{name}' is not in the repository")
    ready = service.repository.model_ready(name, None if version is None else int(version))
    return Reply(200 if ready else 400, codec.dumps({"name": name, "ready": ready}))


def live(service, key, params) -> Reply:
    return Reply(200, codec.dumps({"live": True}))


def ready(service, key, params) -> Reply:
    """Every model has a loaded version."""
    is_ready = service.repository.ready()
    return Reply(200 if is_ready else 503, codec.dumps({"ready": is_ready}))


_INFER = dict(response="V2InferResponse", body="V2InferRequest")
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("v2_server", "GET", "/v2", "read", server_metadata, None, "v2", "Server metadata", "V2ServerMetadata"),
    Endpoint("v2_live", "GET", "/v2/health/live", "open", live, None, "v2", "Liveness (no key needed)"),
    Endpoint(
        "v2_ready",
        "GET",
        "/v2/health/ready",
        "open",
        ready,
        None,
        "v2",
        "Readiness: every model has a loaded version (no key needed)",
    ),
    Endpoint(
        "v2_model", "GET", "/v2/models/{name}", "read", model_metadata, None, "v2", "Model metadata", "V2ModelMetadata"
    ),
    Endpoint(
        "v2_model_version",
        "GET",
        "/v2/models/{name}/versions/{version}",
        "read",
        model_metadata,
        None,
        "v2",
        "Model version metadata",
        "V2ModelMetadata",
    ),
    Endpoint("v2_model_ready", "GET", "/v2/models/{name}/ready", "read", model_ready, None, "v2", "Model readiness"),
    Endpoint(
        "v2_model_version_ready",
        "GET",
        "/v2/models/{name}/versions/{version}/ready",
        "read",
        model_ready,
        None,
        "v2",
        "Model version readiness",
    ),
    Endpoint(
        "v2_infer",
        "POST",
        "/v2/models/{name}/infer",
        "predict",
        plan,
        "v2",
        "v2",
        "Inference (JSON or binary tensors)",
        **_INFER,
    ),
    Endpoint(
        "v2_infer_version",
        "POST",
        "/v2/models/{name}/versions/{version}/infer",
        "predict",
        plan,
        "v2",
        "v2",
        "Inference on one version",
        **_INFER,
    ),
    Endpoint(
        "v2_explain",
        "POST",
        "/v2/models/{name}/explain",
        "explain",
        plan_explain,
        "v2",
        "v2",
        "Explain (maasfin extension): the output, attributions and reason codes as tensors",
    ),
    Endpoint(
        "v2_explain_version",
        "POST",
        "/v2/models/{name}/versions/{version}/explain",
        "explain",
        plan_explain,
        "v2",
        "v2",
        "Explain one version (maasfin extension)",
    ),
)
