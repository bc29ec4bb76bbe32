"""JSON parsing and encoding, and JSON values to validated float32 tensors, for every protocol.

Every problem a client can cause becomes a RequestError (4xx) that names the element in JSON
terms (`input_data[3]["income"] is "x" (a string), expected a number`); nothing a client sends
reaches the core unvalidated. Records and columns keyed by feature name are put in the model's
order by the data boundary (`maasfin.data.records_to_rows`, `check_names`), and the inputs of
models that encode their own (string features, missing values) are converted by the model
(`model.prepare_inputs`). The protocols (protocols/) decide which of these a request's fields are.

Hand-written, not pydantic: the checks depend on the model loaded at request time (feature names,
shapes), the messages must name the exact element, and a 1,000-row request must not build 30,000
validator objects. pydantic models describe the same bodies in the OpenAPI document (schemas.py).
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import orjson

from maasfin import _core
from maasfin import data as data_module
from maasfin.serving.errors import bad_request

F32_MAX = float(np.finfo(np.float32).max)


# -- JSON ------------------------------------------------------------------------------------------
class NonFinite:
    """Stands for a NaN/Infinity literal in parsed JSON, so the error can name where it was."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


def non_finite_message(where: str, v: NonFinite) -> str:
    return (
        f"{where} is {v.name}: NaN and infinity are not allowed (JSON has no such numbers); "
        "impute or drop missing values before sending them"
    )


def json_type(x) -> str:
    """What kind of JSON value `x` is, as messages say it: "a string", "an array", "null", ..."""
    if isinstance(x, NonFinite):
        return "not a finite number"
    return data_module.kind_of(x)


def show(v) -> str:
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
    except ValueError:  # an integer beyond Python's digit limit for int <-> str conversion
        raise bad_request(
            f"{what} holds an integer of more than {sys.get_int_max_str_digits()} digits, which no model input can take"
        ) from None
    return obj


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


def dumps_finite(obj) -> bytes:
    """`dumps` for bodies whose numbers are known to be finite (predictions, after
    check_outputs_finite): orjson, 20x faster than `json` (it would write NaN as null, hence
    only here)."""
    return orjson.dumps(obj)


# -- numbers ---------------------------------------------------------------------------------------
def index_text(path: tuple[int, ...]) -> str:
    """`[3][1]` for the path (3, 1)."""
    return "".join(f"[{i}]" for i in path)


def find_non_number(value, depth: int = 0, path: tuple = ()):
    """(path, value) of the first leaf that is not an int/float (booleans included), or None."""
    if isinstance(value, (list, tuple)):
        if depth > 32:
            return path, value
        for i, v in enumerate(value):
            t = type(v)
            if t is float or t is int:
                continue
            found = find_non_number(v, depth + 1, path + (i,))
            if found is not None:
                return found
        return None
    t = type(value)
    if t is float or t is int:
        return None
    return path, value


def flatten_with_paths(value, path=()):
    """(path, leaf) of every leaf of nested lists, in order."""
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from flatten_with_paths(v, path + (i,))
    else:
        yield path, value


def _ragged_message(value: list, field: str) -> str:
    lengths = [len(v) if isinstance(v, list) else None for v in value]
    first = lengths[0]
    for i, n in enumerate(lengths):
        if n != first:
            a = "a number" if first is None else f"{first} values"
            b = "a number" if n is None else f"{n} values"
            return f"{field} is not a rectangular array: {field}[0] has {a} but {field}[{i}] has {b}"
    return f"{field} is not a rectangular array (its rows differ in length)"


def numbers_to_f32(value, field: str, name_of=None) -> np.ndarray:
    """A float32 array from nested JSON lists of numbers. `name_of(path)` names an element for
    messages (default: field[i][j])."""
    name_of = name_of or (lambda path: field + index_text(path))
    bad = find_non_number(value)
    if bad is not None:
        path, v = bad
        if isinstance(v, list):
            raise bad_request(f"{name_of(path)} is nested too deeply")
        if isinstance(v, NonFinite):
            raise bad_request(non_finite_message(name_of(path), v))
        raise bad_request(f"{name_of(path)} is {show(v)}, expected a number")
    try:
        a64 = np.array(value, dtype=np.float64)
    except ValueError:
        raise bad_request(
            _ragged_message(value, field) if isinstance(value, list) else f"{field} is not a rectangular array"
        ) from None
    except OverflowError:
        a64 = None
    if a64 is None or not (np.abs(a64) <= F32_MAX).all():
        for path, v in flatten_with_paths(value):  # name the first value outside float32's range
            if _magnitude(v) > F32_MAX:
                raise bad_request(
                    f"{name_of(path)} is {v!r}, outside the float32 range (about ±3.4e38) the model computes in"
                )
    return np.ascontiguousarray(a64, dtype=np.float32)


def _magnitude(v) -> float:
    try:
        return abs(float(v))
    except OverflowError:
        return math.inf


# -- tensors of a model's inputs -------------------------------------------------------------------
def no_rows(field: str):
    return bad_request(f"{field} is empty: send at least one record or row")


def check_shape(arr: np.ndarray, spec, field: str, model: str) -> np.ndarray:
    """Rows of `spec.shape` (a TensorSpec); a flat list is accepted as one column only for
    one-feature inputs."""
    if arr.ndim == 1 and spec.shape == (1,):
        arr = arr.reshape(-1, 1)
    if arr.ndim == 0 or tuple(arr.shape[1:]) != spec.shape:
        expected = data_module.shape_str((None,) + spec.shape)
        if len(spec.shape) == 1 and arr.ndim == 2:
            detail = f"rows of {spec.shape[0]} number(s) expected, got rows of {arr.shape[1]}"
        elif len(spec.shape) == 1 and arr.ndim == 1:
            detail = (
                f"a list of rows expected, got a flat list of {arr.shape[0]} number(s); "
                f"wrap one row in brackets: [[...]]"
            )
        else:
            detail = f"got shape {data_module.shape_str(tuple(arr.shape))}"
        raise bad_request(
            f"{field} does not match input '{spec.name}' of model '{model}', which takes shape {expected}: {detail}"
        )
    if arr.shape[0] == 0:
        raise bad_request(f"{field} is empty: send at least one row")
    return arr


def same_rows(xs: list[np.ndarray], sig, field: str) -> None:
    counts = {s.name: x.shape[0] for s, x in zip(sig.inputs, xs)}
    if len(set(counts.values())) > 1:
        raise bad_request(f"{field}: the inputs have different numbers of rows {counts}")


def named_tensors(obj: dict, sig, model: str, field: str) -> list[np.ndarray]:
    """{input_name: rows} for every input of the model (signature `sig`)."""
    names = sig.input_names()
    missing = [n for n in names if n not in obj]
    extra = sorted(k for k in obj if k not in set(names))
    if missing or extra:
        parts = ([f"is missing input(s) {missing}"] if missing else []) + (
            [f"has unknown input(s) {extra}"] if extra else []
        )
        raise bad_request(f"{field} {' and '.join(parts)}; model '{model}' has inputs {names}")
    xs = []
    for spec in sig.inputs:
        where = f"{field}[{json.dumps(spec.name)}]"
        value = obj[spec.name]
        if not isinstance(value, list):
            raise bad_request(f"{where} is {json_type(value)}, expected a list of rows")
        if not value:
            raise no_rows(where)
        xs.append(check_shape(numbers_to_f32(value, where), spec, where, model))
    same_rows(xs, sig, field)
    return xs


def records_tensor(records: list, names: tuple[str, ...], field: str, single: bool = False) -> np.ndarray:
    """Rows from records keyed by feature name (every feature required, no unknown keys), put in
    the model's order by the data boundary."""
    try:
        rows = data_module.records_to_rows(records, names, field, single)
    except (ValueError, TypeError) as e:
        raise bad_request(str(e)) from None
    if single:
        return numbers_to_f32(rows, field, lambda p: f"{field}[{json.dumps(names[p[1]])}]" if len(p) == 2 else field)
    return numbers_to_f32(
        rows, field, lambda p: f"{field}[{p[0]}][{json.dumps(names[p[1]])}]" if len(p) == 2 else field
    )


def columns_tensor(columns: dict, names: tuple[str, ...], field: str) -> np.ndarray:
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
            raise bad_request(
                f"{where} has {len(col)} values but {field}[{json.dumps(names[0])}] has {n}: "
                "every column needs one value per row"
            )
        cols.append(numbers_to_f32(col, where))
        if cols[-1].ndim != 1:
            raise bad_request(f"{where} must be a flat list of numbers (one per row)")
    return np.ascontiguousarray(np.stack(cols, axis=1))


def model_inputs(input_data, sig, model, field: str = "input_data") -> list[np.ndarray]:
    """Inputs of a model that encodes its own (string features, missing values: FeatureSpace
    models): one record, a list of records, or columns keyed by feature, converted and checked by
    the model's data boundary, `model.prepare_inputs` (strings looked up, None/NaN only where the
    model imputes)."""
    names = sig.input_names() if len(sig.inputs) > 1 else list(sig.feature_names or sig.input_names())
    if (
        isinstance(input_data, dict)
        and input_data
        and all(isinstance(v, list) for v in input_data.values())
        and len(sig.inputs) > 1
    ):
        records, columns = None, input_data
    elif isinstance(input_data, dict):
        records, columns = [input_data], None
    elif isinstance(input_data, list) and input_data and all(isinstance(r, dict) for r in input_data):
        records, columns = input_data, None
    elif isinstance(input_data, list) and not input_data:
        raise no_rows(field)
    else:
        raise bad_request(
            f"{field} must be a record (an object keyed by feature name), a list of records or an "
            f"object of columns: model '{model.name}' takes raw features {names}"
        )
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
        raise no_rows(field)
    return [np.ascontiguousarray(a, dtype=np.float32) for a in xs]


def check_outputs_finite(y: np.ndarray) -> None:
    bad = _core.first_nonfinite(np.ascontiguousarray(y, dtype=np.float32))
    if bad >= 0:
        row = int(np.unravel_index(bad, y.shape)[0])
        raise bad_request(
            f"the model's output for row {row} is not finite (NaN or infinity); "
            "check that row's inputs are within the range the model was trained on"
        )
