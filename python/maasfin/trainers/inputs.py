"""The data boundary of a model: inputs, targets and weights checked and converted once, and the signature.

Every entry point (fit, evaluate, predict, the server, explanations) converts user data here:
arrays, lists, DataFrames, dicts of columns and records become float32 arrays in the model's input
order, with errors naming the field and both shapes (data.py holds the shared checks).
"""

from __future__ import annotations

import math

import numpy as np

from maasfin import data
from maasfin.signature import Signature, TensorSpec


class InputsMixin:
    """A model's conversion of user data into the arrays its core graph reads."""

    def _input_specs(self) -> list[tuple]:
        """Per model input: (name, per-sample shape or None, dtype, string encoder layer or None,
        accepts missing values). Inputs that feed only Imputation/lookups may hold NaN."""
        cached = getattr(self, "_input_specs_cache", None)
        if cached is not None:
            return cached
        specs = []
        if getattr(self, "_inputs", None):
            for t in self._inputs:
                consumers = [u.layer for u in self._order if any(v is t for v in u.inputs)]
                encoder = consumers[0] if t.dtype == "string" else None
                missing = bool(consumers) and all(getattr(c, "_accepts_missing", False) for c in consumers)
                specs.append((t.name, tuple(t.shape[1:]), t.layer.dtype, encoder, missing))
        else:  # Sequential: its first layer decides
            layers = self.layers
            first = layers[0] if layers else None
            shape = self._input_shapes[0] if self.built else None
            name = self._input_layer.name if getattr(self, "_input_layer", None) is not None else "input_layer"
            specs.append((name, shape, "float32", None, bool(getattr(first, "_accepts_missing", False))))
        if self.built:
            self._input_specs_cache = specs
        return specs

    def index_limits(self) -> dict[str, tuple[int, str]]:
        """The model inputs read as integer indices: {input name: (limit, layer name)}, for each
        input fed straight into a layer that takes indices in [0, limit) (Embedding,
        CategoryEncoding; the smallest limit if several). Lets a caller check a request's indices
        before predicting (the core refuses an out-of-range index for the whole batch)."""
        out: dict[str, tuple[int, str]] = {}
        if getattr(self, "_inputs", None):
            pairs = [(t.name, u.layer) for t in self._inputs for u in self._order if any(v is t for v in u.inputs)]
        else:
            layers = self.layers
            name = self._input_layer.name if getattr(self, "_input_layer", None) is not None else "input_layer"
            pairs = [(name, layers[0])] if layers else []
        for name, layer in pairs:
            limit = getattr(layer, "index_limit", None)
            if isinstance(limit, int) and (name not in out or limit < out[name][0]):
                out[name] = (limit, layer.name)
        return out

    def _named_columns(self, x, what: str):
        """(columns by input name, extra names, kind) when x gives the inputs by name, else None."""
        named = bool(getattr(self, "_inputs", None))
        if isinstance(x, dict):
            if not named:
                raise TypeError(
                    f"{what} is a dict, but model '{self.name}' has no named inputs; pass an array or a DataFrame"
                )
            return dict(x), [], "dict"
        if isinstance(x, list) and x and all(isinstance(r, dict) for r in x):
            if not named:
                raise TypeError(
                    f"{what} is a list of records, but model '{self.name}' has no named inputs; use a "
                    "functional model with Input(..., name=...) for each feature"
                )
            return (*data.records_to_columns(x, [t.name for t in self._inputs], what), "records")
        if named and data.is_frame(x):
            specs = self._input_specs()
            cols = [str(c) for c in x.columns]
            by_name = (
                len(specs) > 1 or any(s[2] == "string" for s in specs) or (specs[0][1] == (1,) and specs[0][0] in cols)
            )
            if by_name:
                if x.shape[0] == 0:
                    raise ValueError(f"{what} is an empty DataFrame (0 rows)")
                names = [s[0] for s in specs]
                return {c: x[c] for c in names if c in cols}, [c for c in cols if c not in names], "DataFrame"
        return None

    def _prepare_named(self, columns: dict, extra: list, kind: str, what: str) -> list[np.ndarray]:
        specs = self._input_specs()
        names = [s[0] for s in specs]
        if kind == "dict":
            unknown = [str(k) for k in columns if k not in names]
            if unknown:
                raise ValueError(f"{what} has unknown input name(s) {unknown}; model '{self.name}' has inputs {names}")
        missing = [n for n in names if n not in columns]
        if missing:
            raise ValueError(f"{what} is missing input(s) {missing}; model '{self.name}' needs {names}")
        if extra and not getattr(self, "_warned_extra", False):
            self._warned_extra = True
            import warnings

            warnings.warn(
                f"model '{self.name}': ignoring {kind} field(s) {extra} that are not model inputs "
                f"{names} (warned once per model)",
                UserWarning,
                stacklevel=4,
            )
        arrays = [self._convert_input(spec, columns[spec[0]], f"{what}['{spec[0]}']") for spec in specs]
        n = data.check_lengths({f"{what}['{name}']": a for name, a in zip(names, arrays)})
        if n == 0 and kind != "dict":
            raise ValueError(f"{what} has no rows")
        if not self.built:
            self._ensure_built([a.shape[1:] if a.ndim > 1 else (1,) for a in arrays])
        return arrays

    def _convert_input(self, spec, col, label: str) -> np.ndarray:
        name, shape, dtype, encoder, missing = spec
        if dtype == "string":
            arr = encoder._encode(data.string_cells(col, label), label)
        else:
            arr = data.numeric_column(col, label, missing)
        if arr.ndim == 0:
            raise ValueError(f"{label} must have a batch dimension")
        return data.match_input(arr, shape, label, self.name) if shape is not None else arr

    def _prepare_x(self, x, what: str = "x") -> list[np.ndarray]:
        named = self._named_columns(x, what)
        if named is not None:
            return self._prepare_named(*named, what)
        specs = self._input_specs()
        multi = isinstance(x, (list, tuple)) and len(getattr(self, "_inputs", [])) > 1
        parts = list(x) if multi else [x]
        if multi and len(parts) != len(specs):
            raise ValueError(f"model '{self.name}' has {len(specs)} inputs but {what} provides {len(parts)} arrays")
        arrays = []
        for i, part in enumerate(parts):
            label = what if not multi else f"{what}[{i}]"
            spec = specs[i] if i < len(specs) else None
            if spec is not None and (spec[2] == "string" or (spec[4] and not data.is_frame(part))):
                arrays.append(self._convert_input(spec, part, label))
                continue
            names = self._feature_names if (not multi and data.is_frame(part)) else None
            arr, cols = data.to_float_array(part, label, names, allow_nonfinite=bool(spec and spec[4]))
            if spec is not None and spec[4] and np.isinf(arr).any():
                raise ValueError(f"{label} contains infinity")
            if cols is not None and not multi and self._feature_names is None and data.is_frame(part):
                self._pending_names = cols
            arrays.append(arr)
        if not self.built:
            self._ensure_built([a.shape[1:] if a.ndim > 1 else (1,) for a in arrays])
        if len(arrays) != len(self._input_shapes):
            raise ValueError(
                f"model '{self.name}' has {len(self._input_shapes)} inputs but {what} provides {len(arrays)} arrays"
            )
        arrays = [
            data.match_input(a, s, what if len(arrays) == 1 else f"{what}[{i}]", self.name)
            for i, (a, s) in enumerate(zip(arrays, self._input_shapes))
        ]
        return arrays

    # -- the public interface for serving and explanations --------------------------------------
    def prepare_inputs(self, x, what: str = "x") -> list[np.ndarray]:
        """The model's data boundary: `x` (an array, a DataFrame, a dict of columns or a list of
        records) validated and converted to one float32 array per input, strings encoded, names
        matched; errors name `what`, the field and both shapes. Builds the model if needed."""
        return self._prepare_x(x, what)

    def predict_arrays(self, xs: list[np.ndarray], batch_size: int | None = None) -> np.ndarray:
        """Predictions for arrays returned by `prepare_inputs` (one float32 C-contiguous array per
        input), computed `batch_size` rows at a time (default: the core's automatic tile; inference
        is batch-invariant, so the tile never changes a row's output); the core checks only shapes."""
        self._require_built("predictions")
        tile = 0 if batch_size is None else data.positive_int(batch_size, "batch_size")
        return self._graph.predict([np.ascontiguousarray(x, dtype=np.float32) for x in xs], tile)

    @property
    def signature(self) -> Signature:
        """The inputs (names, per-sample shapes, dtypes, whether missing values are accepted), the
        output and the feature names of a built model; ValueError if it is not built."""
        if not self.built:
            self._maybe_build()
        if not self.built:
            raise ValueError(f"model '{self.name}' has no input shape (it was saved before being built)")
        specs = self._input_specs()
        names = [s[0] for s in specs]
        shapes = [tuple(int(d) for d in s) for s in self._input_shapes]
        if len(names) != len(shapes) or len(set(names)) != len(names):
            raise ValueError(f"model '{self.name}' has input names {names} that do not match its {len(shapes)} inputs")
        outs = getattr(self, "_outputs", None)
        out_name = outs[0].layer.name if outs else self.layers[-1].name
        strings = any(s[2] == "string" for s in specs)
        names_ = self.feature_names
        return Signature(
            inputs=tuple(TensorSpec(s[0], shape, s[2], bool(s[4])) for s, shape in zip(specs, shapes)),
            output=TensorSpec(out_name, tuple(int(d) for d in self._graph.output_shape)),
            feature_names=None if names_ is None else tuple(names_),
            raw=strings or any(s[4] for s in specs),
            strings=strings,
        )

    @property
    def drift_reference(self):
        """The fit-time reference of drift reports (per-feature and score bins), or None."""
        return getattr(self, "_drift_reference", None)

    @property
    def reference_scores(self):
        """The outputs on the representative rows recorded when the model file was saved
        (explain/representative.py; checked by a server's warm-up), or None."""
        return getattr(self, "_reference_scores", None)

    def _prepare_y(self, y, n_rows: int, what: str = "y") -> np.ndarray:
        if y is None:
            raise ValueError(f"{what} is required for fit/evaluate with a supervised loss")
        arr, _ = data.to_float_array(y, what)
        out = tuple(self._graph.output_shape)
        width = int(np.prod(out))
        if self.loss.core_name == "sparse_categorical_crossentropy":
            if arr.ndim == 2 and arr.shape[1] == 1:
                arr = arr.reshape(-1)
            if arr.ndim != 1:
                raise ValueError(
                    f"{what} has shape {arr.shape} but loss 'sparse_categorical_crossentropy' needs "
                    f"one integer class id per row, shape (None,) or (None, 1)"
                )
            bad = np.flatnonzero((arr != np.floor(arr)) | (arr < 0) | (arr >= width))
            if bad.size:
                raise ValueError(
                    f"{what} row {bad[0]} holds {arr[bad[0]]!r}, not a class id in [0, {width}) "
                    f"for the output of shape {data.shape_str((None,) + out)}"
                )
            return np.ascontiguousarray(arr.reshape(-1, 1))
        if arr.ndim == 1 and out == (1,):
            arr = arr.reshape(-1, 1)
        if tuple(arr.shape[1:]) != out:
            hint = ""
            if self.loss.core_name == "categorical_crossentropy" and (arr.ndim == 1 or arr.shape[1:] == (1,)):
                hint = (
                    "; for integer class ids use loss='sparse_categorical_crossentropy' or maasfin.utils.to_categorical"
                )
            raise ValueError(
                f"{what} has shape {arr.shape} but model '{self.name}' outputs shape "
                f"{data.shape_str((None,) + out)} and loss '{self.loss.name}' needs targets of that shape{hint}"
            )
        return arr

    def _prepare_weights(self, sample_weight, y: np.ndarray, class_weight, what: str = "sample_weight"):
        w = None
        if sample_weight is not None:
            w, _ = data.to_float_array(sample_weight, what)
            if w.ndim == 2 and w.shape[1] == 1:
                w = w.reshape(-1)
            if w.ndim != 1:
                raise ValueError(f"{what} must be 1-D (one weight per row), got shape {w.shape}")
            if np.any(w < 0):
                raise ValueError(f"{what} row {int(np.flatnonzero(w < 0)[0])} is negative; weights must be >= 0")
        if class_weight is not None:
            if not isinstance(class_weight, dict):
                raise TypeError(
                    f"class_weight must be a dict mapping class ids to weights, got {type(class_weight).__name__}"
                )
            if y.shape[1] == 1:
                ids = (
                    (y[:, 0] > 0.5).astype(np.int64)
                    if self.loss.core_name != "sparse_categorical_crossentropy"
                    else y[:, 0].astype(np.int64)
                )
            else:
                ids = np.argmax(y, axis=1)
            present = set(np.unique(ids).tolist())
            missing = sorted(present - {int(k) for k in class_weight})
            if missing:
                raise ValueError(f"class_weight has no entry for class(es) {missing} present in y")
            table = np.zeros(max(present | {int(k) for k in class_weight}) + 1, dtype=np.float32)
            for k, v in class_weight.items():
                if not (isinstance(v, (int, float, np.number)) and v >= 0 and math.isfinite(v)):
                    raise ValueError(f"class_weight[{k!r}] must be a finite number >= 0, got {v!r}")
                table[int(k)] = v
            cw = table[ids]
            w = cw if w is None else np.ascontiguousarray(w * cw, dtype=np.float32)
        return w

    def _prepare_xyw(self, x, y, sample_weight=None, class_weight=None, prefix=""):
        xs = self._prepare_x(x, prefix + "x")
        ys = self._prepare_y(y, xs[0].shape[0], prefix + "y")
        w = self._prepare_weights(sample_weight, ys, class_weight, prefix + "sample_weight")
        data.check_lengths(
            {
                **{f"{prefix}x" if len(xs) == 1 else f"{prefix}x[{i}]": a for i, a in enumerate(xs)},
                f"{prefix}y": ys,
                f"{prefix}sample_weight": w,
            }
        )
        return xs, ys, w

    def _adopt_feature_names(self) -> None:
        names = getattr(self, "_pending_names", None)
        if (
            names is not None
            and self._feature_names is None
            and len(self._input_shapes) == 1
            and self._input_shapes[0] == (len(names),)
        ):
            self._feature_names = list(names)
        self._pending_names = None

    @property
    def feature_names(self):
        """Column names of the DataFrame the model was first trained on (its input schema), or None."""
        return None if self._feature_names is None else list(self._feature_names)
