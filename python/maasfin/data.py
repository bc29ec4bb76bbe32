"""The boundary: turns user data (NumPy, pandas, lists) into float32 C-contiguous arrays the core
trusts, and rejects bad input with errors in the user's terms (field, row, column, both shapes).

At most one copy is made per array; a float32 C-contiguous NumPy array is passed through as is.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from maasfin import _core

try:  # pandas is a dependency, but keep the import cheap and optional for embedders
    import pandas as pd
except ImportError:  # pragma: no cover
    pd = None


def _is_frame(x) -> bool:
    return pd is not None and isinstance(x, pd.DataFrame)


def _is_series(x) -> bool:
    return pd is not None and isinstance(x, pd.Series)


def _non_numeric_columns(df) -> list[str]:
    return [str(c) for c, dt in df.dtypes.items()
            if not (pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt))]


def frame_to_array(df, what: str, feature_names: Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
    """Selects columns by name (when the model has a schema) and converts them to float32."""
    columns = [str(c) for c in df.columns]
    if feature_names is not None:
        missing = [c for c in feature_names if c not in columns]
        if missing:
            raise ValueError(f"{what} is missing column(s) {missing} that the model was trained on; "
                             f"expected columns {list(feature_names)}")
        if columns != list(feature_names):
            df = df[list(feature_names)]
            columns = list(feature_names)
    bad = _non_numeric_columns(df)
    if bad:
        raise TypeError(f"{what} has non-numeric column(s) {bad}; encode them as numbers first")
    try:
        arr = df.to_numpy(dtype=np.float32, na_value=np.nan)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{what} could not be converted to float32: {e}") from None
    return np.ascontiguousarray(arr), columns


def to_float_array(x: Any, what: str, feature_names: Sequence[str] | None = None,
                   allow_nonfinite: bool = False) -> tuple[np.ndarray, list[str] | None]:
    """Converts `x` to a float32 C-contiguous array; returns it with its column names (if any)."""
    names = None
    if _is_frame(x):
        arr, names = frame_to_array(x, what, feature_names)
    elif _is_series(x):
        if not (pd.api.types.is_numeric_dtype(x.dtype) or pd.api.types.is_bool_dtype(x.dtype)):
            raise TypeError(f"{what} (a Series of dtype {x.dtype}) is not numeric")
        arr = np.ascontiguousarray(x.to_numpy(dtype=np.float32, na_value=np.nan))
        names = [str(x.name)] if x.name is not None else None
    else:
        if x is None:
            raise ValueError(f"{what} is None")
        if isinstance(x, np.ndarray):
            a = x
        else:
            try:
                a = np.asarray(x)
            except ValueError as e:  # ragged nested lists
                raise ValueError(f"{what} is not a rectangular array: {e}") from None
        if a.dtype == object or a.dtype.kind in "USVMm":
            raise TypeError(f"{what} has non-numeric dtype {a.dtype}; pass numbers")
        if a.dtype.kind == "c":
            raise TypeError(f"{what} is complex; pass real numbers")
        if a.ndim == 0:
            raise ValueError(f"{what} must be an array with a batch dimension, got the scalar {a.item()!r}")
        if a.dtype == np.float32 and a.flags.c_contiguous:
            arr = a
        else:
            with np.errstate(over="ignore", invalid="ignore"):  # reported below, with the cell
                arr = np.ascontiguousarray(a, dtype=np.float32)
            if not allow_nonfinite and a.dtype.kind == "f" and a.dtype.itemsize > 4:
                _check_float32_range(a, arr, what)
    if not allow_nonfinite:
        check_finite(arr, what, names)
    return arr, names


def _check_float32_range(original: np.ndarray, converted: np.ndarray, what: str) -> None:
    bad = _core.first_nonfinite(converted)
    if bad >= 0 and np.isfinite(original.reshape(-1)[bad]):
        idx = np.unravel_index(bad, original.shape)
        where = f"row {idx[0]}" + (f", column {idx[-1]}" if original.ndim >= 2 else "")
        raise ValueError(f"{what} holds {original.reshape(-1)[bad]!r} at {where}, outside the float32 range "
                         f"(about ±3.4e38) the model computes in")


def check_finite(arr: np.ndarray, what: str, names: Sequence[str] | None = None) -> None:
    bad = _core.first_nonfinite(arr)
    if bad < 0:
        return
    idx = np.unravel_index(bad, arr.shape)
    value = arr.reshape(-1)[bad]
    kind = "NaN" if np.isnan(value) else "infinity"
    where = f"row {idx[0]}"
    if arr.ndim >= 2:
        col = idx[-1]
        label = f"column '{names[col]}'" if names is not None and col < len(names) else f"column {col}"
        where += f", {label}"
    count = int(arr.size - np.count_nonzero(np.isfinite(arr)))
    raise ValueError(f"{what} contains {kind} at {where} ({count} non-finite value(s) in total); "
                     "impute or drop missing values before passing them to the model")


def shape_str(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def match_input(arr: np.ndarray, expected: tuple[int, ...], what: str, model: str) -> np.ndarray:
    """Checks a batch against the per-sample input shape, accepting 1-D data for 1-feature inputs."""
    if arr.ndim == 1 and expected == (1,):
        arr = arr.reshape(-1, 1)
    if tuple(arr.shape[1:]) != tuple(expected):
        detail = ""
        if len(expected) == 1 and arr.ndim == 2:
            detail = f": {expected[0]} feature(s) per row expected, got {arr.shape[1]}"
        raise ValueError(
            f"{what} has shape {arr.shape} but model '{model}' expects input shape "
            f"{shape_str((None,) + tuple(expected))}{detail}")
    return arr


def check_lengths(named: dict[str, np.ndarray]) -> int:
    lengths = {k: v.shape[0] for k, v in named.items() if v is not None}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k}: {n}" for k, n in lengths.items())
        raise ValueError(f"data cardinality is ambiguous: make sure all arrays have the same number of rows ({detail})")
    return next(iter(lengths.values()))


def positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
