"""Request decoding and response encoding for the three protocols, validated against a model's
signature. Every problem a client can cause becomes a RequestError (4xx) that names the field
and says what is wrong; nothing a client sends reaches the core unvalidated.

Protocols:
- simple:    POST /v1/predict          {"model_name", "input_data": record | [records] | [rows]}
- tfserving: POST /v1/models/m:predict {"instances": [...]} (row format) | {"inputs": ...} (columnar)
- v2 (OIP):  POST /v2/models/m/infer   {"inputs": [{name, shape, datatype, data | binary}]}, with the
             binary tensor extension (Inference-Header-Content-Length).

Hand-written, not pydantic: the checks depend on the model loaded at request time (feature names,
shapes), the messages must name the exact element (`input_data[3]['income']`), and a 1,000-row
request must not build 30,000 validator objects. pydantic models describe the same bodies in
the OpenAPI document (schemas.py).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import orjson

from maasfin import data as data_module
from maasfin.serving.errors import bad_request
from maasfin.signature import Signature, TensorSpec

_F32_MAX = float(np.finfo(np.float32).max)


# -- JSON ------------------------------------------------------------------------------------------
class NonFinite:
    """Stands for a NaN/Infinity literal in parsed JSON, so the error can name where it was."""
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


def _non_finite_message(where: str, v: NonFinite) -> str:
    return (f"{where} is {v.name}: NaN and infinity are not allowed (JSON has no such numbers); "
            "impute or drop missing values before sending them")


def json_type(x) -> str:
    """What kind of JSON value `x` is, as messages say it: "a string", "an array", "null", ..."""
    if isinstance(x, NonFinite):
        return "not a finite number"
    return data_module.kind_of(x)


def _show(v) -> str:
    """A JSON value as an error message shows it: `"x" (a string)`, `true (a boolean)`, `null`."""
    if v is None:
        return "null"
    if isinstance(v, NonFinite):
        return v.name
    if isinstance(v, bool):
        return ("true" if v else "false") + " (a boolean)"
    if isinstance(v, str):
        s = v if len(v) <= 40 else v[:37] + "..."
        return json.dumps(s) + " (a string)"
    if isinstance(v, (list, dict)):
        return json_type(v)
    return repr(v)


def parse_json(body: bytes, what: str = "request body") -> dict:
    """A JSON object from bytes: UTF-8, no NaN/Infinity literals, an object at the top.

    orjson parses valid bodies (5x faster than `json`: 1.3 ms instead of 6.3 ms for 1,000 records
    of 20 features); anything it refuses is parsed again by `json`, which either names the error
    (line and column) or accepts what orjson does not, such as NaN literals (kept as NonFinite, so
    the validation can name the element) and integers beyond 64 bits."""
    if not body:
        raise bad_request(f"{what} is empty; send a JSON object")
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        obj = _parse_json_checked(body, what)
    if not isinstance(obj, dict):
        raise bad_request(f"{what} must be a JSON object, got {json_type(obj)}")
    return obj


def _parse_json_checked(body: bytes, what: str):
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise bad_request(f"{what} is not UTF-8 text (invalid byte at offset {e.start})") from None
    try:
        obj = json.loads(text, parse_constant=NonFinite)
    except json.JSONDecodeError as e:
        raise bad_request(f"{what} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise bad_request(f"{what} is nested too deeply") from None
    return obj


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


def dumps_finite(obj) -> bytes:
    """`dumps` for bodies whose numbers are known to be finite (predictions, after
    check_outputs_finite): orjson, 20x faster than `json` (it would write NaN as null, hence
    only here)."""
    return orjson.dumps(obj)


# -- numbers ---------------------------------------------------------------------------------------
def _index(path: tuple[int, ...]) -> str:
    return "".join(f"[{i}]" for i in path)


def _find_non_number(value, depth: int = 0, path: tuple = ()):
    """(path, value) of the first leaf that is not an int/float (booleans included), or None."""
    if isinstance(value, (list, tuple)):
        if depth > 32:
            return path, value
        for i, v in enumerate(value):
            t = type(v)
            if t is float or t is int:
                continue
            found = _find_non_number(v, depth + 1, path + (i,))
            if found is not None:
                return found
        return None
    t = type(value)
    if t is float or t is int:
        return None
    return path, value


def _ragged_message(value: list, field: str) -> str:
    lengths = [len(v) if isinstance(v, list) else None for v in value]
    first = lengths[0]
    for i, n in enumerate(lengths):
        if n != first:
            a = "a number" if first is None else f"{first} values"
            b = "a number" if n is None else f"{n} values"
            return (f"{field} is not a rectangular array: {field}[0] has {a} but {field}[{i}] has {b}")
    return f"{field} is not a rectangular array (its rows differ in length)"


def numbers_to_f32(value, field: str, name_of=None) -> np.ndarray:
    """A float32 array from nested JSON lists of numbers. `name_of(path)` names an element for
    messages (default: field[i][j])."""
    name_of = name_of or (lambda path: field + _index(path))
    bad = _find_non_number(value)
    if bad is not None:
        path, v = bad
        if isinstance(v, list):
            raise bad_request(f"{name_of(path)} is nested too deeply")
        if isinstance(v, NonFinite):
            raise bad_request(_non_finite_message(name_of(path), v))
        raise bad_request(f"{name_of(path)} is {_show(v)}, expected a number")
    try:
        a64 = np.array(value, dtype=np.float64)
    except ValueError:
        raise bad_request(_ragged_message(value, field) if isinstance(value, list) else
                          f"{field} is not a rectangular array") from None
    except OverflowError:
        a64 = None
    if a64 is None or not (np.abs(a64) <= _F32_MAX).all():
        for path, v in _flatten_with_paths(value):  # name the first value outside float32's range
            if _magnitude(v) > _F32_MAX:
                raise bad_request(f"{name_of(path)} is {v!r}, outside the float32 range (about ±3.4e38) "
                                  "the model computes in")
    return np.ascontiguousarray(a64, dtype=np.float32)


def _magnitude(v) -> float:
    try:
        return abs(float(v))
    except OverflowError:
        return math.inf


def _flatten_with_paths(value, path=()):
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _flatten_with_paths(v, path + (i,))
    else:
        yield path, value


def _shape_text(shape) -> str:
    return data_module.shape_str(tuple(shape))


def check_shape(arr: np.ndarray, spec: TensorSpec, field: str, model: str) -> np.ndarray:
    """Rows of `spec.shape`; a flat list is accepted as one column only for one-feature inputs."""
    if arr.ndim == 1 and spec.shape == (1,):
        arr = arr.reshape(-1, 1)
    if arr.ndim == 0 or tuple(arr.shape[1:]) != spec.shape:
        expected = _shape_text((None,) + spec.shape)
        if len(spec.shape) == 1 and arr.ndim == 2:
            detail = f"rows of {spec.shape[0]} number(s) expected, got rows of {arr.shape[1]}"
        elif len(spec.shape) == 1 and arr.ndim == 1:
            detail = (f"a list of rows expected, got a flat list of {arr.shape[0]} number(s); "
                      f"wrap one row in brackets: [[...]]")
        else:
            detail = f"got shape {_shape_text(arr.shape)}"
        raise bad_request(f"{field} does not match input '{spec.name}' of model '{model}', which takes "
                          f"shape {expected}: {detail}")
    if arr.shape[0] == 0:
        raise bad_request(f"{field} is empty: send at least one row")
    return arr


def records_to_f32(records: list, names: tuple[str, ...], field: str, single: bool = False) -> np.ndarray:
    """Rows from records keyed by feature name (every feature required, no unknown keys), put in
    the model's order by the data boundary."""
    try:
        rows = data_module.records_to_rows(records, names, field, single)
    except (ValueError, TypeError) as e:
        raise bad_request(str(e)) from None
    if single:
        return numbers_to_f32(rows, field, lambda p: f"{field}[{json.dumps(names[p[1]])}]" if len(p) == 2 else field)
    return numbers_to_f32(rows, field,
                          lambda p: f"{field}[{p[0]}][{json.dumps(names[p[1]])}]" if len(p) == 2 else field)


def columns_to_f32(columns: dict, names: tuple[str, ...], field: str) -> np.ndarray:
    """Rows from columns keyed by feature name ({"income": [..], "debt": [..]})."""
    try:
        data_module.check_names(columns, names, field)
    except ValueError as e:
        raise bad_request(str(e)) from None
    cols = []
    n = None
    for name in names:
        col = columns[name]
        where = f"{field}[{json.dumps(name)}]"
        if not isinstance(col, list):
            raise bad_request(f"{where} is {json_type(col)}, expected a list of numbers (one per row)")
        if n is None:
            n = len(col)
        elif len(col) != n:
            raise bad_request(f"{where} has {len(col)} values but {field}[{json.dumps(names[0])}] has {n}: "
                              "every column needs one value per row")
        cols.append(numbers_to_f32(col, where))
        if cols[-1].ndim != 1:
            raise bad_request(f"{where} must be a flat list of numbers (one per row)")
    return np.ascontiguousarray(np.stack(cols, axis=1))


def _no_rows(field: str):
    return bad_request(f"{field} is empty: send at least one record or row")


def _need_feature_names(field: str, model: str, spec: TensorSpec):
    return bad_request(f"{field} holds records (objects), but model '{model}' has no feature names (it was not "
                       f"trained on a DataFrame): send rows instead, each a list of {spec.width} number(s)")


def decode_with_model(input_data, sig: Signature, model, field: str = "input_data") -> list[np.ndarray]:
    """Inputs of a model that encodes its own (string features, missing values: FeatureSpace
    models): one record, a list of records, or columns keyed by feature, converted and checked by
    the model's data boundary (strings looked up, None/NaN only where the model imputes)."""
    names = sig.input_names() if len(sig.inputs) > 1 else list(sig.feature_names or sig.input_names())
    if isinstance(input_data, dict) and input_data and all(isinstance(v, list) for v in input_data.values()) \
            and len(sig.inputs) > 1:
        records, columns = None, input_data
    elif isinstance(input_data, dict):
        records, columns = [input_data], None
    elif isinstance(input_data, list) and input_data and all(isinstance(r, dict) for r in input_data):
        records, columns = input_data, None
    elif isinstance(input_data, list) and not input_data:
        raise _no_rows(field)
    else:
        raise bad_request(f"{field} must be a record (an object keyed by feature name), a list of records or an "
                          f"object of columns: model '{sig.output.name if model is None else model.name}' takes "
                          f"raw features {names}")
    for i, rec in enumerate(records or [columns]):
        extra = sorted(str(k) for k in rec if k not in set(names))
        if extra:
            where = field if records is None or len(records) == 1 else f"{field}[{i}]"
            raise bad_request(f"{where} has unknown feature(s) {extra}; the model's features are {names}")
    try:
        xs = model.prepare_inputs(records if records is not None else columns, field)
    except (ValueError, TypeError) as e:
        raise bad_request(str(e)) from None
    if xs[0].shape[0] == 0:
        raise _no_rows(field)
    return [np.ascontiguousarray(a, dtype=np.float32) for a in xs]


# -- the simple protocol ---------------------------------------------------------------------------
def decode_simple(input_data, sig: Signature, model: str) -> list[np.ndarray]:
    field = "input_data"
    if len(sig.inputs) > 1:
        if not isinstance(input_data, dict):
            raise bad_request(f"model '{model}' has {len(sig.inputs)} inputs {sig.input_names()}: send "
                              f"input_data as an object with one list of rows per input")
        return named_tensors(input_data, sig, model, field)
    spec = sig.inputs[0]
    if isinstance(input_data, dict):
        if sig.feature_names is None:
            raise _need_feature_names(field, model, spec)
        return [records_to_f32([input_data], sig.feature_names, field, single=True)]
    if not isinstance(input_data, list):
        raise bad_request(f"{field} must be an object (one record), a list of records or a list of rows, "
                          f"got {json_type(input_data)}")
    if not input_data:
        raise _no_rows(field)
    if isinstance(input_data[0], dict):
        if sig.feature_names is None:
            raise _need_feature_names(field, model, spec)
        return [records_to_f32(input_data, sig.feature_names, field)]
    return [check_shape(numbers_to_f32(input_data, field), spec, field, model)]


def named_tensors(obj: dict, sig: Signature, model: str, field: str) -> list[np.ndarray]:
    """{input_name: rows} for every input of the model."""
    names = sig.input_names()
    missing = [n for n in names if n not in obj]
    extra = sorted(k for k in obj if k not in set(names))
    if missing or extra:
        parts = ([f"is missing input(s) {missing}"] if missing else []) + \
                ([f"has unknown input(s) {extra}"] if extra else [])
        raise bad_request(f"{field} {' and '.join(parts)}; model '{model}' has inputs {names}")
    xs = []
    for spec in sig.inputs:
        where = f"{field}[{json.dumps(spec.name)}]"
        value = obj[spec.name]
        if not isinstance(value, list):
            raise bad_request(f"{where} is {json_type(value)}, expected a list of rows")
        if not value:
            raise _no_rows(where)
        xs.append(check_shape(numbers_to_f32(value, where), spec, where, model))
    same_rows(xs, sig, field)
    return xs


def same_rows(xs: list[np.ndarray], sig: Signature, field: str) -> None:
    counts = {s.name: x.shape[0] for s, x in zip(sig.inputs, xs)}
    if len(set(counts.values())) > 1:
        raise bad_request(f"{field}: the inputs have different numbers of rows {counts}")


# -- TF Serving REST -------------------------------------------------------------------------------
def decode_tfserving(body: dict, sig: Signature, model: str) -> tuple[list[np.ndarray], str]:
    """(inputs, "instances" | "inputs") from a TF Serving predict request."""
    unknown = sorted(k for k in body if k not in ("instances", "inputs", "signature_name"))
    if unknown:
        raise bad_request(f"unknown field(s) {unknown} in the request; TF Serving's predict takes "
                          "'instances' (row format) or 'inputs' (columnar format), and 'signature_name'")
    sn = body.get("signature_name", "serving_default")
    if sn != "serving_default":
        raise bad_request(f"signature_name {_show(sn)} is unknown; the only signature is 'serving_default'")
    if "instances" in body and "inputs" in body:
        raise bad_request("the request has both 'instances' and 'inputs'; send one of them")
    if "instances" in body:
        return _tf_instances(body["instances"], sig, model), "instances"
    if "inputs" in body:
        return _tf_inputs(body["inputs"], sig, model), "inputs"
    raise bad_request("the request needs 'instances' (row format) or 'inputs' (columnar format)")


def _tf_instances(instances, sig: Signature, model: str) -> list[np.ndarray]:
    field = "instances"
    if not isinstance(instances, list):
        raise bad_request(f"{field} must be a list (one element per row), got {json_type(instances)}")
    if not instances:
        raise _no_rows(field)
    names = sig.input_names()
    if isinstance(instances[0], dict):
        keys = set(instances[0])
        if keys == set(names):  # named inputs, one value per input per row
            xs = []
            for spec in sig.inputs:
                column = []
                for i, inst in enumerate(instances):
                    if not isinstance(inst, dict):
                        raise bad_request(f"{field}[{i}] is {json_type(inst)}, but {field}[0] is an object")
                    if set(inst) != set(names):
                        raise bad_request(f"{field}[{i}] has keys {sorted(inst)}, expected the inputs {names}")
                    column.append(inst[spec.name])
                where = f"{field}[*][{json.dumps(spec.name)}]"
                arr = numbers_to_f32(column, field,
                                     lambda p, s=spec.name: f"{field}[{p[0]}][{json.dumps(s)}]" + _index(p[1:]))
                xs.append(check_shape(arr, spec, where, model))
            return xs
        if len(sig.inputs) == 1 and sig.feature_names is not None:
            return [records_to_f32(instances, sig.feature_names, field)]
        if len(sig.inputs) == 1:
            raise bad_request(f"{field}[0] has keys {sorted(keys)}, but model '{model}' has input {names} and no "
                              "feature names: send each instance as a list of numbers")
        raise bad_request(f"{field}[0] has keys {sorted(keys)}, expected the model's inputs {names}")
    if len(sig.inputs) > 1:
        raise bad_request(f"model '{model}' has inputs {names}: send each instance as an object with one "
                          "value per input")
    return [check_shape(numbers_to_f32(instances, field), sig.inputs[0], field, model)]


def _tf_inputs(inputs, sig: Signature, model: str) -> list[np.ndarray]:
    field = "inputs"
    names = sig.input_names()
    if isinstance(inputs, dict):
        if set(inputs) == set(names) or len(sig.inputs) > 1:
            return named_tensors(inputs, sig, model, field)
        if sig.feature_names is not None:
            return [columns_to_f32(inputs, sig.feature_names, field)]
        raise bad_request(f"{field} has keys {sorted(inputs)}, expected the model's input {names}")
    if len(sig.inputs) > 1:
        raise bad_request(f"model '{model}' has inputs {names}: send 'inputs' as an object keyed by input name")
    if not isinstance(inputs, list):
        raise bad_request(f"{field} must be a list of rows or an object keyed by input name, got {json_type(inputs)}")
    if not inputs:
        raise _no_rows(field)
    return [check_shape(numbers_to_f32(inputs, field), sig.inputs[0], field, model)]


# -- Open Inference Protocol v2 --------------------------------------------------------------------
V2_DTYPES = {
    "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"), "FP16": np.dtype("<f2"),
    "INT8": np.dtype("i1"), "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("u1"), "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"), "UINT64": np.dtype("<u8"),
}
_V2_KNOWN = set(V2_DTYPES) | {"BOOL", "BYTES", "BF16"}


@dataclass
class V2Request:
    xs: list[np.ndarray]
    id: str | None
    binary_output: bool
    output_name: str


def split_binary(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """(JSON header, binary section) per the binary tensor extension."""
    if header_length is None:
        return body, b""
    try:
        n = int(header_length.strip())
    except ValueError:
        raise bad_request(f"the Inference-Header-Content-Length header is {header_length!r}, "
                          "not a number of bytes") from None
    if not 0 < n <= len(body):
        raise bad_request(f"the Inference-Header-Content-Length header is {n}, but the body has {len(body)} "
                          "bytes; it must be the length of the JSON header within the body")
    return body[:n], body[n:]


def decode_v2(body: dict, binary: bytes, sig: Signature, model: str) -> V2Request:
    unknown = sorted(k for k in body if k not in ("id", "parameters", "inputs", "outputs"))
    if unknown:
        raise bad_request(f"unknown field(s) {unknown} in the inference request")
    rid = body.get("id")
    if rid is not None and not isinstance(rid, str):
        raise bad_request(f"'id' must be a string, got {json_type(rid)}")
    params = body.get("parameters", {})
    if not isinstance(params, dict):
        raise bad_request(f"'parameters' must be an object, got {json_type(params)}")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise bad_request("'inputs' must be a non-empty list of tensors {name, shape, datatype, data}")
    by_name: dict[str, np.ndarray] = {}
    specs = {s.name: s for s in sig.inputs}
    offset = 0
    for k, t in enumerate(inputs):
        where = f"inputs[{k}]"
        if not isinstance(t, dict):
            raise bad_request(f"{where} must be an object {{name, shape, datatype, data}}, got {json_type(t)}")
        extra = sorted(x for x in t if x not in ("name", "shape", "datatype", "data", "parameters"))
        if extra:
            raise bad_request(f"{where} has unknown field(s) {extra}")
        name = t.get("name")
        if not isinstance(name, str):
            raise bad_request(f"{where}.name must be a string, got {json_type(name)}")
        where = f"input '{name}'"
        if name not in specs:
            raise bad_request(f"unknown input '{name}'; model '{model}' has input(s) {sig.input_names()}")
        if name in by_name:
            raise bad_request(f"{where} is given twice")
        spec = specs[name]
        shape = t.get("shape")
        if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
            raise bad_request(f"{where}: 'shape' must be a list of non-negative integers, got {_show(shape)}")
        expected = [-1, *spec.shape]
        if len(shape) != len(expected) or tuple(shape[1:]) != spec.shape:
            raise bad_request(f"{where} has shape {shape}, but model '{model}' expects {expected}")
        if shape[0] == 0:
            raise bad_request(f"{where} has no rows (shape {shape})")
        datatype = t.get("datatype")
        if not isinstance(datatype, str):
            raise bad_request(f"{where}: 'datatype' must be a string such as \"FP32\", got {_show(datatype)}")
        if datatype not in V2_DTYPES:
            what = "is not a numeric datatype" if datatype in _V2_KNOWN else "is not a known datatype"
            raise bad_request(f"{where} has datatype {datatype!r}, which {what}; model '{model}' takes FP32 "
                              f"(also accepted: {', '.join(d for d in V2_DTYPES if d != 'FP32')})")
        dtype = V2_DTYPES[datatype]
        count = int(np.prod(shape))
        tparams = t.get("parameters", {})
        if not isinstance(tparams, dict):
            raise bad_request(f"{where}: 'parameters' must be an object")
        size = tparams.get("binary_data_size")
        if size is not None:
            if "data" in t:
                raise bad_request(f"{where} has both 'data' and binary data; send one")
            if type(size) is not int or size < 0:
                raise bad_request(f"{where}: binary_data_size must be a non-negative integer, got {_show(size)}")
            if size != count * dtype.itemsize:
                raise bad_request(f"{where}: binary_data_size is {size} bytes, but shape {shape} of {datatype} "
                                  f"needs {count * dtype.itemsize}")
            if offset + size > len(binary):
                raise bad_request(f"{where}: the request's binary data ends after {len(binary)} bytes, "
                                  f"but the inputs declare at least {offset + size}")
            arr = np.frombuffer(binary, dtype=dtype, count=count, offset=offset).reshape(shape)
            offset += size
        else:
            if "data" not in t:
                raise bad_request(f"{where} has no 'data' (and no binary_data_size parameter)")
            values = t["data"]
            if not isinstance(values, list):
                raise bad_request(f"{where}: 'data' must be a list of numbers, got {json_type(values)}")
            bad = _find_non_number(values)
            if bad is not None and isinstance(bad[1], NonFinite):
                raise bad_request(_non_finite_message(f"{where}: data{_index(bad[0])}", bad[1]))
            if bad is not None:
                raise bad_request(f"{where}: data{_index(bad[0])} is {_show(bad[1])}, expected a number")
            if dtype.kind in "iu":
                info = np.iinfo(dtype)
                for p, v in _flatten_with_paths(values):
                    if type(v) is not int:
                        raise bad_request(f"{where} is {datatype}, but data{_index(p)} is {v!r}, not an integer")
                    if not info.min <= v <= info.max:
                        raise bad_request(f"{where}: data{_index(p)} is {v}, outside the range of {datatype}")
            try:
                arr = np.array(values, dtype=np.float64)
            except ValueError:
                raise bad_request(f"{where}: 'data' is not a rectangular array of numbers") from None
            except OverflowError:
                raise bad_request(f"{where}: 'data' holds a number outside the float32 range (about ±3.4e38)") from None
            if arr.size != count:
                raise bad_request(f"{where} has {arr.size} values in 'data', but its shape {shape} needs {count}")
            arr = arr.reshape(shape)
        by_name[name] = _to_model_f32(arr, where)
    missing = [n for n in sig.input_names() if n not in by_name]
    if missing:
        raise bad_request(f"missing input(s) {missing}; model '{model}' has input(s) {sig.input_names()}")
    if offset != len(binary):
        raise bad_request(f"the request has {len(binary)} bytes of binary data, but its inputs declare {offset}")
    xs = [by_name[n] for n in sig.input_names()]
    same_rows(xs, sig, "inputs")
    return V2Request(xs=xs, id=rid, binary_output=_binary_output(body, params, sig), output_name=sig.output.name)


def _to_model_f32(arr: np.ndarray, where: str) -> np.ndarray:
    """float32, C-contiguous, finite, within float32's range; errors name the row and column."""
    flat = arr.reshape(arr.shape[0], -1)
    try:
        out, _ = data_module.to_float_array(flat, where)
    except (ValueError, TypeError) as e:
        raise bad_request(str(e)) from None
    return np.ascontiguousarray(out.reshape(arr.shape))


def _binary_output(body: dict, params: dict, sig: Signature) -> bool:
    outputs = body.get("outputs")
    default = params.get("binary_data_output", False)
    if not isinstance(default, bool):
        raise bad_request("parameters.binary_data_output must be true or false")
    if outputs is None:
        return default
    if not isinstance(outputs, list):
        raise bad_request(f"'outputs' must be a list of {{name, parameters}}, got {json_type(outputs)}")
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


def encode_v2(y: np.ndarray, req: V2Request, model: str, version: int) -> tuple[bytes, dict[str, str], str]:
    """(body, headers, media type) of an inference response."""
    out = {"name": req.output_name, "datatype": "FP32", "shape": list(y.shape)}
    resp = {"model_name": model, "model_version": str(version)}
    if req.id is not None:
        resp["id"] = req.id
    if req.binary_output:
        raw = np.ascontiguousarray(y, dtype="<f4").tobytes()
        out["parameters"] = {"binary_data_size": len(raw)}
        resp["outputs"] = [out]
        header = dumps_finite(resp)
        return header + raw, {"Inference-Header-Content-Length": str(len(header))}, "application/octet-stream"
    out["data"] = y.reshape(-1).tolist()
    resp["outputs"] = [out]
    return dumps_finite(resp), {}, "application/json"


def encode_v2_explanation(y: np.ndarray, attributions: np.ndarray, names: list[str], reasons: list,
                          req: V2Request, model: str, version: int) -> bytes:
    """The body of a v2 explain response (JSON): the model's output tensor, then "attributions"
    (FP32, rows x features, parameters.feature_names) and "reasons" (BYTES, one JSON document per
    row: that row's reason codes)."""
    resp = {"model_name": model, "model_version": str(version)}
    if req.id is not None:
        resp["id"] = req.id
    resp["outputs"] = [
        {"name": req.output_name, "datatype": "FP32", "shape": list(y.shape), "data": y.reshape(-1).tolist()},
        {"name": "attributions", "datatype": "FP32", "shape": list(attributions.shape),
         "data": attributions.reshape(-1).tolist(), "parameters": {"feature_names": list(names)}},
        {"name": "reasons", "datatype": "BYTES", "shape": [len(reasons)],
         "data": [json.dumps(r, separators=(",", ":")) for r in reasons]},
    ]
    return dumps_finite(resp)


def check_outputs_finite(y: np.ndarray) -> None:
    from maasfin import _core
    bad = _core.first_nonfinite(np.ascontiguousarray(y, dtype=np.float32))
    if bad >= 0:
        row = int(np.unravel_index(bad, y.shape)[0])
        raise bad_request(f"the model's output for row {row} is not finite (NaN or infinity); "
                          "check that row's inputs are within the range the model was trained on")
