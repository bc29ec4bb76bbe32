"""An estimator's input schema: its raw features (names, numeric or string, the string categories), the data boundary.

The schema is read from the `example` given to `save_estimator`: a numeric column becomes a
float32 feature, a string (object/category) column a string feature whose categories are the
values seen in the example. At the boundary every feature becomes one float32 column: numbers as
they are, strings as their index in the categories, missing values (None, NaN) as NaN. The ONNX
graph is fed from those columns (`onnx_feeds`): string indices become their strings again, and a
missing string becomes "nan", as scikit-learn's encoders name a missing category.
"""

from __future__ import annotations

import numpy as np

from maasfin import data
from maasfin.saving.file_format import check_list, check_object, check_str, fail

FLOAT, STRING = "float32", "string"
MISSING_STRING = "nan"
MAX_FEATURES = 100_000
MAX_CATEGORIES = 100_000


class InputSchema:
    """The raw features of an estimator, in the order of the columns it was fitted on."""

    def __init__(self, names: list[str], dtypes: list[str], categories: dict[str, list[str]]):
        self.names = list(names)
        self.dtypes = list(dtypes)
        self.categories = {k: list(v) for k, v in categories.items()}
        self.codes = {k: {c: i for i, c in enumerate(v)} for k, v in self.categories.items()}

    @property
    def strings(self) -> bool:
        return STRING in self.dtypes

    # -- from the example, to and from config.json ---------------------------------------------
    @classmethod
    def from_example(cls, example, feature_names=None) -> InputSchema:
        """The schema of `example` (a DataFrame, or a 2-D numeric array with `feature_names`)."""
        if data.is_frame(example):
            if example.shape[0] == 0:
                raise ValueError("save_estimator: example is an empty DataFrame (0 rows)")
            names = [str(c) for c in example.columns]
            if feature_names is not None and list(feature_names) != names:
                raise ValueError(
                    f"save_estimator: feature_names {list(feature_names)} differ from example's columns {names}"
                )
            if len(set(names)) != len(names):
                raise ValueError(f"save_estimator: example has duplicate column names {names}")
            dtypes, cats = [], {}
            import pandas as pd

            for name in names:
                col = example[name]
                if pd.api.types.is_bool_dtype(col.dtype) or pd.api.types.is_numeric_dtype(col.dtype):
                    dtypes.append(FLOAT)
                    continue
                cells = data.string_cells(col, f"example[{name!r}]")
                values = sorted({str(v) for v in cells if v is not None and not (isinstance(v, float) and v != v)})
                bad = [v for v in cells if v is not None and not isinstance(v, (str, float))]
                if bad or any(isinstance(v, float) and v == v for v in cells):
                    raise TypeError(
                        f"save_estimator: example[{name!r}] mixes strings with {type(bad[0] if bad else 0.0).__name__} "
                        "values; give a string column strings and missing values only"
                    )
                if MISSING_STRING in values:
                    raise ValueError(
                        f"save_estimator: example[{name!r}] holds the category 'nan', which is how a missing "
                        "string reaches the ONNX graph; rename it"
                    )
                dtypes.append(STRING)
                cats[name] = values
            return cls(names, dtypes, cats)
        arr = np.asarray(example)
        if arr.ndim != 2 or arr.shape[0] == 0 or arr.dtype.kind not in "biuf":
            raise TypeError(
                "save_estimator: example must be a DataFrame or a non-empty 2-D numeric array, "
                f"got {type(example).__name__} of shape {np.shape(example)}"
            )
        names = [f"feature_{j}" for j in range(arr.shape[1])] if feature_names is None else list(feature_names)
        if len(names) != arr.shape[1] or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"save_estimator: feature_names must be {arr.shape[1]} non-empty strings, got {names}")
        return cls(names, [FLOAT] * len(names), {})

    def document(self) -> dict:
        return {
            "features": [
                {"name": n, "dtype": d, **({"categories": self.categories[n]} if d == STRING else {})}
                for n, d in zip(self.names, self.dtypes)
            ]
        }

    @classmethod
    def from_document(cls, doc, src: str) -> InputSchema:
        check_object(doc, src, "input_schema", ("features",))
        feats = check_list(doc["features"], src, "input_schema.features", MAX_FEATURES)
        if not feats:
            raise fail(src, "input_schema.features is empty")
        names, dtypes, cats = [], [], {}
        for i, f in enumerate(feats):
            where = f"input_schema.features[{i}]"
            check_object(f, src, where, ("name", "dtype"), ("categories",))
            name = check_str(f["name"], src, f"{where}.name")
            if name in names:
                raise fail(src, f"{where}.name {name!r} is a duplicate")
            if f["dtype"] not in (FLOAT, STRING):
                raise fail(src, f"{where}.dtype must be {FLOAT!r} or {STRING!r}, got {f['dtype']!r}")
            if ("categories" in f) != (f["dtype"] == STRING):
                raise fail(src, f"{where} must have categories exactly when its dtype is {STRING!r}")
            if f["dtype"] == STRING:
                values = check_list(f["categories"], src, f"{where}.categories", MAX_CATEGORIES)
                for j, v in enumerate(values):
                    check_str(v, src, f"{where}.categories[{j}]", 4096, allow_empty=True)
                if len(set(values)) != len(values) or MISSING_STRING in values:
                    raise fail(src, f"{where}.categories must be distinct and may not hold {MISSING_STRING!r}")
                cats[name] = values
            names.append(name)
            dtypes.append(f["dtype"])
        return cls(names, dtypes, cats)

    # -- the data boundary ---------------------------------------------------------------------
    def prepare(self, x, what: str = "x") -> list[np.ndarray]:
        """`x` (a DataFrame, a dict of columns, a list of records, or a 2-D array in feature order)
        as one float32 (rows, 1) column per feature: strings by category index, missing as NaN."""
        columns = self._columns(x, what)
        out = [self._column(n, d, columns[n], f"{what}[{n!r}]") for n, d in zip(self.names, self.dtypes)]
        rows = data.check_lengths({f"{what}[{n!r}]": a for n, a in zip(self.names, out)})
        if rows == 0:
            raise ValueError(f"{what} has no rows")
        return [np.ascontiguousarray(a.reshape(-1, 1)) for a in out]

    def _columns(self, x, what: str) -> dict:
        if data.is_frame(x):
            cols = [str(c) for c in x.columns]
            missing = [n for n in self.names if n not in cols]
            if missing:
                raise ValueError(f"{what} is missing feature(s) {missing}; the estimator's features are {self.names}")
            return {n: x[n] for n in self.names}
        if isinstance(x, dict):
            unknown = [str(k) for k in x if k not in self.codes and k not in self.names]
            if unknown:
                raise ValueError(f"{what} has unknown feature(s) {unknown}; the estimator's features are {self.names}")
            missing = [n for n in self.names if n not in x]
            if missing:
                raise ValueError(f"{what} is missing feature(s) {missing}; the estimator's features are {self.names}")
            return dict(x)
        if isinstance(x, list) and x and all(isinstance(r, dict) for r in x):
            cols, _ = data.records_to_columns(x, self.names, what)
            return {n: cols.get(n, [None] * len(x)) for n in self.names}
        arr = np.asarray(x, dtype=object) if not isinstance(x, np.ndarray) else x
        if arr.ndim != 2 or arr.shape[1] != len(self.names):
            raise ValueError(
                f"{what} has shape {np.shape(x)} but the estimator takes {len(self.names)} features "
                f"{self.names}: pass an array of shape (rows, {len(self.names)}), a DataFrame or records"
            )
        return {n: arr[:, j] for j, n in enumerate(self.names)}

    def _column(self, name: str, dtype: str, col, label: str) -> np.ndarray:
        if dtype == FLOAT:
            arr = data.numeric_column(col, label, True).reshape(-1)
            if np.isinf(arr).any():
                raise ValueError(f"{label} contains infinity")
            return arr
        cells = data.string_cells(col, label).reshape(-1)
        codes = self.codes[name]
        out = np.empty(cells.shape[0], np.float32)
        for i, v in enumerate(cells):
            if v is None or (isinstance(v, float) and v != v):
                out[i] = np.nan
            elif isinstance(v, str) and v in codes:
                out[i] = codes[v]
            else:
                known = self.categories[name]
                raise ValueError(
                    f"{label} row {i} holds {v!r}, not one of the {len(known)} categories seen when the estimator "
                    f"was saved ({known[:10]}{' ...' if len(known) > 10 else ''})"
                )
        return out

    def check_codes(self, xs: list[np.ndarray]) -> None:
        """Arrays from `prepare` (or a caller): string indices must be whole numbers in range."""
        if len(xs) != len(self.names):
            raise ValueError(f"expected {len(self.names)} input arrays (one per feature), got {len(xs)}")
        for name, dtype, a in zip(self.names, self.dtypes, xs):
            if dtype != STRING:
                continue
            v = a[np.isfinite(a)]
            if v.size and ((v != np.floor(v)).any() or v.min() < 0 or v.max() >= len(self.categories[name])):
                raise ValueError(f"input {name!r} holds a category index outside [0, {len(self.categories[name])})")

    def onnx_feeds(self, xs: list[np.ndarray], layout: str, input_names: list[str]) -> dict:
        """The ONNX graph's inputs for columns from `prepare`: one (rows, 1) tensor per feature
        ("columns"), or one float32 (rows, features) matrix ("matrix")."""
        if layout == "matrix":
            return {input_names[0]: np.ascontiguousarray(np.concatenate(xs, axis=1), dtype=np.float32)}
        feeds = {}
        for name, dtype, a in zip(self.names, self.dtypes, xs):
            if dtype == STRING:
                table = np.array(self.categories[name] + [MISSING_STRING], dtype=object)
                idx = np.where(np.isfinite(a), a, len(table) - 1).astype(np.int64)
                feeds[name] = table[idx].reshape(-1, 1)
            else:
                feeds[name] = np.ascontiguousarray(a.reshape(-1, 1), dtype=np.float32)
        return feeds
