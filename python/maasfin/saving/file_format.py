"""The `.maas` file format's constants, size limits and the strict checks every reader uses:
JSON parsing that refuses duplicate keys, NaN/Infinity and oversized numbers, and typed field
validation whose errors name the file and the field (`ModelFileError`, a ValueError).
docs/file-format.md documents the format."""

from __future__ import annotations

import json
import math

import numpy as np

FORMAT_NAME = "maasfin.model"
FORMAT_VERSION = 1
WEIGHTS_FORMAT_NAME = "maasfin.weights"
OPTIMIZER_FORMAT_NAME = "maasfin.optimizer_state"

CONFIG, WEIGHTS, OPTIMIZER, METADATA = "config.json", "weights.safetensors", "optimizer.safetensors", "metadata.json"
REPORT = "report.json"  # optional: the validation report (model.save(..., report=...))
REQUIRED = (CONFIG, WEIGHTS, METADATA)
MEMBERS = (CONFIG, WEIGHTS, OPTIMIZER, METADATA, REPORT)

_KiB, MiB, _GiB = 1 << 10, 1 << 20, 1 << 30

#: Size limits of the reader (bytes unless noted). Raise them for very large models, e.g.
#: ``maasfin.saving.LIMITS["weights.safetensors"] = 8 << 30``.
LIMITS = {
    "archive": 8 * _GiB,  # the whole file
    "total": 8 * _GiB,  # all members, uncompressed
    CONFIG: 16 * MiB,
    METADATA: 4 * MiB,
    REPORT: 16 * MiB,
    WEIGHTS: 2 * _GiB,
    OPTIMIZER: 6 * _GiB,
    "model.weights.h5": 2 * _GiB,  # in Keras .keras files (keras_io.py); also caps a .h5's float32 data
    "hdf5_seconds": 60,  # CPU seconds of the process that parses a Keras file's HDF5
    "hdf5_memory": 4 * _GiB,  # its address space, plus 3x the HDF5 data
    "user_metadata": 1 * MiB,  # model.save(..., metadata=...) as JSON
    "compression_ratio": 100,  # uncompressed / compressed, for deflated members ...
    "ratio_floor": 1 * MiB,  # ... larger than this
    "safetensors_header": 16 * MiB,
    "layers": 10_000,  # layers in one model
    "elements_per_sample": 2**31 - 1,  # size of any layer's output for one sample
    # Memory budgets of the loaders, checked before anything is allocated (docs/file-format.md):
    "json_values": 1_000_000,  # values in one JSON document (each costs ~30-100 bytes parsed)
    "unbuilt_weights": 64 * MiB,  # parameter bytes of a model saved unbuilt (no weights), on one feature
    "activation_memory": 256 * MiB,  # a 32-row inference tile's activations, or 2x the weights if more
}
MAX_MEMBERS = 16
_MAX_JSON_INT_DIGITS = 20
MAX_RANK = 8


class ModelFileError(ValueError):
    """A model, weights or config file (or bytes, or config dict) that maasfin refuses to load."""


def fail(src: str, msg: str) -> ModelFileError:
    if len(msg) > 1000:  # a hostile file can put megabytes into a name we quote
        msg = msg[:1000] + " ... (message truncated)"
    return ModelFileError(f"{src}: {msg}")


# -- JSON ----------------------------------------------------------------------------------------
def jsonable(x, where: str):
    """A copy of `x` made of JSON types only (tuples become lists, NumPy scalars Python numbers)."""
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        if not math.isfinite(float(x)):
            raise ValueError(f"{where}: {float(x)} is not a finite number and cannot be saved")
        return float(x)
    if isinstance(x, (list, tuple)):
        return [jsonable(v, where) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist(), where)
    if isinstance(x, dict):
        out = {}
        for k, v in x.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: keys must be strings, got {k!r}")
            out[k] = jsonable(v, where)
        return out
    raise TypeError(f"{where}: {type(x).__name__} value {x!r} is not JSON-serialisable")


def dumps(obj) -> bytes:
    return json.dumps(obj, indent=1, sort_keys=False, allow_nan=False, ensure_ascii=False).encode("utf-8")


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(f"duplicate key {k!r}")
        out[k] = v
    return out


def _parse_int(s: str) -> int:
    if len(s.lstrip("-")) > _MAX_JSON_INT_DIGITS:
        raise ValueError(f"integer with {len(s)} digits is too large")
    return int(s)


def _parse_float(s: str) -> float:
    v = float(s)
    if not math.isfinite(v):
        raise ValueError(f"number {s} is out of range")
    return v


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed")


_KEEP = b'"[{,:'
_DROP = bytes(b for b in range(256) if b not in _KEEP)


def json_values(raw) -> int:
    """An upper bound on the values (scalars, keys, lists, objects) json.loads would create from
    `raw`, counted without parsing: one, plus every `[`, `{`, `,` and `:` outside strings. Parsed,
    each value costs 30-100 bytes, so a 16 MiB document of `[[[[...]]]]` would cost ~800 MB."""
    s = bytes(raw).replace(b"\\\\", b"").replace(b'\\"', b"")  # escaped quotes do not end strings
    t = np.frombuffer(s.translate(None, _DROP), np.uint8)
    count, inside = 1, 0
    for start in range(0, len(t), MiB):  # in slices: a few MiB of scratch whatever the size
        c = t[start : start + MiB]
        quote = c == 34
        parity = np.bitwise_xor.accumulate(quote.view(np.uint8)) ^ inside  # 1 inside a string
        count += int(np.count_nonzero(~quote & (parity == 0)))
        inside = int(parity[-1])
    return count


def loads(raw: bytes, src: str, what: str):
    """Strict JSON: UTF-8, no duplicate keys, no NaN/Infinity, bounded integers, nesting and
    number of values (LIMITS['json_values'], counted before parsing)."""
    n = json_values(raw)
    if n > LIMITS["json_values"]:
        raise fail(
            src,
            f"{what} holds about {n} JSON values, more than the limit of {LIMITS['json_values']} "
            "(LIMITS['json_values'])",
        )
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as e:
        raise fail(src, f"{what} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        return json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_reject_constant,
        )
    except RecursionError:
        raise fail(src, f"{what} is nested too deeply") from None
    except ValueError as e:
        raise fail(src, f"{what} is not valid JSON: {e}") from None


def normalized(x):
    """JSON-normal form, for comparing configs (tuples vs lists, 1 vs 1.0 compare equal)."""
    return json.loads(json.dumps(jsonable(x, "config"), allow_nan=False))


# -- field validation ----------------------------------------------------------------------------
def type_name(x) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "null",
    }.get(type(x), type(x).__name__)


def check_dict(x, src: str, where: str) -> dict:
    """An object with any keys."""
    if not isinstance(x, dict):
        raise fail(src, f"{where} must be an object, got {type_name(x)}")
    return x


def check_object(x, src: str, where: str, required=(), optional=()) -> dict:
    """An object with exactly the `required` keys and some of the `optional` ones."""
    check_dict(x, src, where)
    missing = [k for k in required if k not in x]
    if missing:
        raise fail(src, f"{where} is missing field(s) {missing}")
    unknown = sorted(set(x) - set(required) - set(optional))
    if unknown:
        raise fail(src, f"{where} has unknown field(s) {unknown}")
    return x


def check_str(x, src: str, where: str, max_len: int = 1024, allow_empty: bool = False) -> str:
    if not isinstance(x, str):
        raise fail(src, f"{where} must be a string, got {type_name(x)}")
    if (not x and not allow_empty) or len(x) > max_len:
        raise fail(src, f"{where} must be a string of 1 to {max_len} characters, got {len(x)}")
    return x


def check_int(x, src: str, where: str, lo: int = 0, hi: int = 2**63 - 1) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise fail(src, f"{where} must be an integer, got {type_name(x)}")
    if not lo <= x <= hi:
        raise fail(src, f"{where} must be in [{lo}, {hi}], got {x}")
    return x


def check_list(x, src: str, where: str, max_len: int) -> list:
    if not isinstance(x, list):
        raise fail(src, f"{where} must be a list, got {type_name(x)}")
    if len(x) > max_len:
        raise fail(src, f"{where} has {len(x)} entries, more than the limit of {max_len}")
    return x


def check_shape(x, src: str, where: str) -> tuple[int, ...]:
    dims = check_list(x, src, where, MAX_RANK)
    if not dims:
        raise fail(src, f"{where} must have at least one dimension")
    out = tuple(check_int(d, src, f"{where}[{i}]", 1, LIMITS["elements_per_sample"]) for i, d in enumerate(dims))
    if math.prod(out) > LIMITS["elements_per_sample"]:
        raise fail(src, f"{where} {list(out)} has more than {LIMITS['elements_per_sample']} elements per sample")
    return out


def _check_json_value(x, where: str, depth: int = 0) -> None:
    """User metadata: JSON types only, finite numbers, 64-bit integers, bounded nesting."""
    if depth > 32:
        raise ValueError(f"{where} is nested more than 32 levels deep")
    if x is None or isinstance(x, (bool, str)):
        return
    if isinstance(x, int):
        if not -(2**63) <= x < 2**63:
            raise ValueError(f"{where}: integer {x} does not fit in 64 bits")
        return
    if isinstance(x, float):
        if not math.isfinite(x):
            raise ValueError(f"{where}: {x} is not a finite number")
        return
    if isinstance(x, list):
        for i, v in enumerate(x):
            _check_json_value(v, f"{where}[{i}]", depth + 1)
        return
    if isinstance(x, dict):
        for k, v in x.items():
            if not isinstance(k, str):
                raise ValueError(f"{where}: keys must be strings, got {k!r}")
            _check_json_value(v, f"{where}[{k!r}]", depth + 1)
        return
    raise ValueError(
        f"{where}: {type(x).__name__} value {x!r} is not JSON (use None, bool, int, float, str, list or dict)"
    )


def validate_user_metadata(metadata) -> dict:
    """Checks `model.save(..., metadata=...)`: a JSON-serialisable dict with string keys."""
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    _check_json_value(metadata, "metadata")
    size = len(dumps(metadata))
    if size > LIMITS["user_metadata"]:
        raise ValueError(f"metadata is {size} bytes as JSON, more than the limit of {LIMITS['user_metadata']}")
    return metadata
