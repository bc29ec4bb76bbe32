"""The boundary: turns user data (NumPy, pandas, lists) into float32 C-contiguous arrays the core
trusts, and rejects bad input with errors in the user's terms (field, row, column, both shapes).

At most one copy is made per array; a float32 C-contiguous NumPy array is passed through as is.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from maasfin import _core
from maasfin.streaming.parquet import ParquetDataset  # noqa: F401  (maasfin.data.ParquetDataset)


class _Pandas:
    """pandas, imported at its first use: only code that already holds a DataFrame or Series
    reaches it, so `import maasfin` never imports pandas (~0.3 s)."""

    def __getattr__(self, name):
        import pandas

        return getattr(pandas, name)


pd = _Pandas()


def loaded_pandas():
    """The pandas module if something imported it, else None: a DataFrame, a Series or pd.NA can
    only exist once pandas is loaded, so recognising one never imports it."""
    return sys.modules.get("pandas")


def is_frame(x) -> bool:
    """True for a pandas DataFrame (without importing pandas)."""
    p = loaded_pandas()
    return p is not None and isinstance(x, p.DataFrame)


def is_series(x) -> bool:
    """True for a pandas Series (without importing pandas)."""
    p = loaded_pandas()
    return p is not None and isinstance(x, p.Series)


_is_frame, _is_series = is_frame, is_series


def _non_numeric_columns(df) -> list[str]:
    return [
        str(c)
        for c, dt in df.dtypes.items()
        if not (pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt))
    ]


def frame_to_array(df, what: str, feature_names: Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
    """Selects columns by name (when the model has a schema) and converts them to float32."""
    columns = [str(c) for c in df.columns]
    if feature_names is not None:
        missing = [c for c in feature_names if c not in columns]
        if missing:
            raise ValueError(
                f"{what} is missing column(s) {missing} that the model was trained on; "
                f"expected columns {list(feature_names)}"
            )
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


def to_float_array(
    x: Any, what: str, feature_names: Sequence[str] | None = None, allow_nonfinite: bool = False
) -> tuple[np.ndarray, list[str] | None]:
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
        raise ValueError(
            f"{what} holds {original.reshape(-1)[bad]!r} at {where}, outside the float32 range "
            f"(about ±3.4e38) the model computes in"
        )


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
    raise ValueError(
        f"{what} contains {kind} at {where} ({count} non-finite value(s) in total); "
        "impute or drop missing values before passing them to the model"
    )


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
            f"{shape_str((None,) + tuple(expected))}{detail}"
        )
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


# -- named inputs: dicts of columns, DataFrames by input name, lists of records ----------------------
def _scalar_error(col, label: str):
    return ValueError(
        f"{label} must hold one value per row (an array, list or column), got the scalar {col!r}; "
        "for single rows pass a list of records, e.g. [{...}]"
    )


def records_to_columns(records, names: Sequence[str], what: str) -> tuple[dict, list[str]]:
    """A list of dict records -> {input name: list of values} and the keys that are not inputs.
    A key absent from a record is a missing value (None) for that row."""
    keys: dict[str, None] = {}
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise TypeError(f"{what}[{i}] is a {type(r).__name__}, not a dict record")
        keys.update(dict.fromkeys(map(str, r)))
    wanted = set(names)
    cols = {n: [r.get(n) for r in records] for n in names if n in keys}
    return cols, [k for k in keys if k not in wanted]


def kind_of(x) -> str:
    """A value's kind as error messages name it, in JSON's words: null, a boolean, a number, a
    string, an array, an object."""
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "a boolean"
    if isinstance(x, (int, float)):
        return "a number"
    if isinstance(x, str):
        return "a string"
    if isinstance(x, (list, tuple)):
        return "an array"
    if isinstance(x, dict):
        return "an object"
    return type(x).__name__


def check_names(given, names: Sequence[str], what: str) -> None:
    """ValueError unless the keys of `given` are exactly the features `names`, naming the missing
    and the unknown ones."""
    missing = [n for n in names if n not in given]
    known = set(names)
    extra = sorted(str(k) for k in given if k not in known)
    if missing or extra:
        parts = ([f"is missing feature(s) {missing}"] if missing else []) + (
            [f"has unknown feature(s) {extra}"] if extra else []
        )
        raise ValueError(f"{what} {' and '.join(parts)}; the model's features are {list(names)}")


def records_to_rows(records: list, names: Sequence[str], what: str, single: bool = False) -> list:
    """Strict records of a single-input model with feature names: each a dict keyed by exactly the
    features `names`, returned as rows of values in that order (values unchecked). `single`: the
    records are the one record `what`. TypeError for a record that is not a dict, ValueError for
    missing or unknown features."""
    n = len(names)
    getter = operator.itemgetter(*names)
    try:  # the common case: every record a dict with exactly the features
        if all(type(rec) is dict and len(rec) == n for rec in records):
            rows = list(map(getter, records))
            return rows if n > 1 else [(r,) for r in rows]
    except (KeyError, TypeError):
        pass
    rows = []
    for i, rec in enumerate(records):
        where = what if single else f"{what}[{i}]"
        if not isinstance(rec, dict):
            raise TypeError(
                f"{where} is {kind_of(rec)}, but {what}[0] is a record: "
                "send all records as objects keyed by feature name"
            )
        check_names(rec, names, where)
        rows.append([rec[k] for k in names])
    return rows


def numeric_column(col, label: str, allow_missing: bool) -> np.ndarray:
    """One numeric input's values as float32 (rows, ...). NaN/None are missing values, allowed only
    when the input feeds layers that handle them (Imputation, lookups)."""
    if isinstance(col, (str, bytes)) or (np.ndim(col) == 0 and not _is_series(col)):
        raise _scalar_error(col, label)
    if _is_series(col):
        if pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
            arr = col.to_numpy(dtype=np.float32, na_value=np.nan)
        else:
            arr = _objects_to_float(col.to_numpy(dtype=object, na_value=None), label)
    else:
        a = col if isinstance(col, np.ndarray) else np.asarray(col, dtype=object)
        if a.dtype.kind in "US":
            first = a.reshape(-1)[0] if a.size else ""
            raise ValueError(
                f"{label} is a numeric input but holds strings (e.g. {first!r}); declare it with "
                "Input(..., dtype='string') and a StringLookup, or pass numbers"
            )
        if a.dtype.kind == "O":
            arr = _objects_to_float(a, label)
        elif a.dtype.kind in "biuf":
            with np.errstate(over="ignore", invalid="ignore"):
                arr = a.astype(np.float32)
        else:
            raise ValueError(f"{label} has dtype {a.dtype}, not numbers")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if allow_missing:
        bad = np.isinf(arr)
        if bad.any():
            row = int(np.unravel_index(int(np.flatnonzero(bad)[0]), arr.shape)[0])
            raise ValueError(f"{label} contains infinity at row {row}")
    else:
        check_finite(arr, label)
    return arr


def _objects_to_float(a: np.ndarray, label: str) -> np.ndarray:
    flat = a.reshape(-1)
    width = flat.size // max(1, a.shape[0]) if a.ndim else 1
    for i, v in enumerate(flat):
        if isinstance(v, (str, bytes)):
            raise ValueError(
                f"{label} is a numeric input but row {i // max(1, width)} holds the string {v!r}; "
                "pass numbers (None or NaN for a missing value)"
            )
    try:
        out = np.array(
            [np.nan if v is None or (loaded_pandas() is not None and v is loaded_pandas().NA) else v for v in flat],
            dtype=np.float64,
        )
    except (TypeError, ValueError) as e:
        raise ValueError(f"{label} holds values that are not numbers: {e}") from None
    with np.errstate(over="ignore", invalid="ignore"):
        return out.reshape(a.shape).astype(np.float32)


def string_cells(col, label: str) -> np.ndarray:
    """One string input's values as a C-contiguous object array (str, or None/NaN for missing)
    for the C++ lookup, which rejects any other value naming the feature and the row."""
    if isinstance(col, (str, bytes)) or (np.ndim(col) == 0 and not _is_series(col)):
        raise _scalar_error(col, label)
    if _is_series(col):
        a = col.to_numpy(dtype=object, na_value=None)
    elif isinstance(col, np.ndarray):
        a = col if col.dtype == object else col.astype(object)
    else:
        try:
            a = np.array(col, dtype=object)
        except ValueError as e:
            raise ValueError(f"{label} is not a rectangular array: {e}") from None
    return np.ascontiguousarray(a)
