"""Open Inference Protocol v2 tensors of raw-feature models: one [N] or [N, 1] tensor per feature.

A model whose signature is `raw` (FeatureSpace networks, saved estimators) takes one input per raw
feature: string features as BYTES tensors (JSON: a list of strings; binary: each element a 4-byte
little-endian length then its UTF-8 bytes, as tritonclient writes them), numeric features as
FP32/FP64/INT*/UINT*. Missing values are JSON `null` (binary float data: NaN), accepted only where
the signature says the input accepts them. The tensors become columns keyed by feature, which the
model's own data boundary, `model.prepare_inputs`, converts and checks (categories, ranges).
"""

from __future__ import annotations

import math
import struct

import numpy as np

from maasfin.serving import codec
from maasfin.serving.errors import bad_request

_FIELDS = ("name", "shape", "datatype", "data", "parameters")


def _is_string(spec) -> bool:
    return spec.dtype == "string"


def _wanted(spec) -> str:
    return "BYTES" if _is_string(spec) else "FP32"


def _missing_refused(where: str, row: int) -> Exception:
    return bad_request(
        f"{where}: row {row} is missing (null or NaN), but the model does not accept missing values there"
    )


def _bytes_elements(raw: bytes, where: str, count: int) -> list[str]:
    """The `count` strings of a binary BYTES tensor (4-byte little-endian length, then the bytes)."""
    out, pos = [], 0
    for row in range(count):
        if pos + 4 > len(raw):
            raise bad_request(
                f"{where}: binary BYTES data ends after {len(raw)} bytes, before the length of element {row} "
                f"(the shape declares {count} elements)"
            )
        (n,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if pos + n > len(raw):
            raise bad_request(
                f"{where}: element {row} declares {n} bytes, but only {len(raw) - pos} remain in its binary data"
            )
        try:
            out.append(raw[pos : pos + n].decode("utf-8"))
        except UnicodeDecodeError:
            raise bad_request(f"{where}: row {row} is not valid UTF-8 text") from None
        pos += n
    if pos != len(raw):
        raise bad_request(f"{where}: binary_data_size is {len(raw)} bytes, but its {count} element(s) take {pos} bytes")
    return out


def _json_values(t: dict, where: str, count: int, shape: list) -> list:
    if "data" not in t:
        raise bad_request(f"{where} has no 'data' (and no binary_data_size parameter)")
    values = t["data"]
    if not isinstance(values, list):
        raise bad_request(f"{where}: 'data' must be a list, got {codec.json_type(values)}")
    if len(shape) == 2 and len(values) == shape[0] and all(isinstance(v, list) for v in values):
        if any(len(v) != 1 for v in values):
            raise bad_request(f"{where}: 'data' is nested but not one value per row (shape {shape})")
        values = [v[0] for v in values]
    if len(values) != count:
        raise bad_request(f"{where} has {len(values)} values in 'data', but its shape {shape} needs {count}")
    return values


def _strings(t, where, spec, binary_part, count, shape) -> list:
    if binary_part is not None:
        return _bytes_elements(binary_part, where, count)
    values = _json_values(t, where, count, shape)
    for row, v in enumerate(values):
        if v is None:
            if not spec.accepts_missing:
                raise _missing_refused(where, row)
        elif not isinstance(v, str):
            raise bad_request(f"{where} is BYTES, but row {row} is {codec.show(v)}, not a string or null")
    return values


def _numbers(t, where, spec, datatype, dtype, binary_part, count, shape) -> np.ndarray:
    if binary_part is not None:
        arr = np.frombuffer(binary_part, dtype=dtype, count=count).astype(np.float64)
    else:
        values = _json_values(t, where, count, shape)
        out = np.empty(count, dtype=np.float64)
        for row, v in enumerate(values):
            if v is None:
                out[row] = np.nan
            elif isinstance(v, codec.NonFinite):
                raise bad_request(codec.non_finite_message(f"{where}: row {row}", v))
            elif type(v) is bool or not isinstance(v, (int, float)):
                raise bad_request(f"{where} is {datatype}, but row {row} is {codec.show(v)}, not a number or null")
            elif dtype.kind in "iu" and type(v) is not int:
                raise bad_request(f"{where} is {datatype}, but row {row} is {v!r}, not an integer")
            elif dtype.kind in "iu" and not np.iinfo(dtype).min <= v <= np.iinfo(dtype).max:
                raise bad_request(f"{where}: row {row} is {v}, outside the range of {datatype}")
            else:
                try:
                    out[row] = float(v)
                except OverflowError:
                    raise bad_request(f"{where}: row {row} is outside the range of a float") from None
        arr = out
    nan = np.flatnonzero(np.isnan(arr))
    if nan.size and not spec.accepts_missing:
        raise _missing_refused(where, int(nan[0]))
    inf = np.flatnonzero(np.isinf(arr))
    if inf.size:
        raise bad_request(f"{where}: row {int(inf[0])} is {arr[inf[0]]}, not a finite number")
    return arr


def raw_tensor(t, k: int, specs: dict, seen: dict, sig, model: str, binary: bytes, offset: int, dtypes: dict):
    """(name, column, offset after it) of inputs[k] for a raw-feature model; `seen`: the inputs before it."""
    where = f"inputs[{k}]"
    if not isinstance(t, dict):
        raise bad_request(f"{where} must be an object {{name, shape, datatype, data}}, got {codec.json_type(t)}")
    extra = sorted(x for x in t if x not in _FIELDS)
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
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
        raise bad_request(f"{where} has shape {shape}, but model '{model}' expects [-1] or [-1, 1] (one value per row)")
    if shape[0] == 0:
        raise bad_request(f"{where} has no rows (shape {shape})")
    count = math.prod(shape)
    if count > 2**31 - 1:
        raise bad_request(f"{where} has shape {shape}, {count} values: more than any request can carry")
    datatype = t.get("datatype")
    if not isinstance(datatype, str):
        raise bad_request(
            f"{where}: 'datatype' must be a string such as \"{_wanted(spec)}\", got {codec.show(datatype)}"
        )
    if _is_string(spec) and datatype != "BYTES":
        raise bad_request(f"{where} has datatype {datatype!r}, but model '{model}' takes it as a string feature: BYTES")
    if not _is_string(spec) and datatype not in dtypes:
        raise bad_request(
            f"{where} has datatype {datatype!r}, but model '{model}' takes it as a numeric feature: FP32 "
            f"(also accepted: {', '.join(d for d in dtypes if d != 'FP32')})"
        )
    tparams = t.get("parameters", {})
    if not isinstance(tparams, dict):
        raise bad_request(f"{where}: 'parameters' must be an object")
    size = tparams.get("binary_data_size")
    part = None
    if size is not None:
        if "data" in t:
            raise bad_request(f"{where} has both 'data' and binary data; send one")
        if type(size) is not int or size < 0:
            raise bad_request(f"{where}: binary_data_size must be a non-negative integer, got {codec.show(size)}")
        if not _is_string(spec) and size != count * dtypes[datatype].itemsize:
            raise bad_request(
                f"{where}: binary_data_size is {size} bytes, but shape {shape} of {datatype} "
                f"needs {count * dtypes[datatype].itemsize}"
            )
        if offset + size > len(binary):
            raise bad_request(
                f"{where}: the request's binary data ends after {len(binary)} bytes, "
                f"but the inputs declare at least {offset + size}"
            )
        part = binary[offset : offset + size]
        offset += size
    if _is_string(spec):
        column = _strings(t, where, spec, part, count, shape)
    else:
        column = _numbers(t, where, spec, datatype, dtypes[datatype], part, count, shape)
    return name, column, offset


def model_columns(by_name: dict, shapes: dict, v) -> list[np.ndarray]:
    """The model's inputs from columns keyed by feature (all of one row count), through `model.prepare_inputs`."""
    sig = v.signature
    rows = {n: len(c) for n, c in by_name.items()}
    first = sig.input_names()[0]
    for n in sig.input_names():
        if rows[n] != rows[first]:
            raise bad_request(
                f"inputs have different numbers of rows: input '{first}' has shape {shapes[first]}, "
                f"input '{n}' has shape {shapes[n]}"
            )
    columns = {n: (c if isinstance(c, list) else c.tolist()) for n, c in by_name.items()}
    try:
        xs = v.model.prepare_inputs(columns, "inputs")
    except (ValueError, TypeError) as e:
        raise bad_request(str(e)) from None
    return [np.ascontiguousarray(a, dtype=np.float32) for a in xs]
