"""What preprocessing layers share: reading adapt data, argument checks, the base class.

Adapt data may be arrays, DataFrames, Series, lists or iterables of batches.
"""

from __future__ import annotations

import numpy as np

from maasfin import _core
from maasfin.data import is_frame, is_series, pd
from maasfin.layers.base import KerasTensor, Layer

MODES = ("int", "one_hot", "multi_hot", "count")


def is_pandas(x) -> bool:
    return is_frame(x) or is_series(x)


def batches(data, what: str) -> list:
    """adapt's data as a list of batches: one for an array-like, several for an iterable."""
    if data is None:
        raise ValueError(f"{what}: adapt needs data, got None")
    if isinstance(data, (list, tuple)) and data and all(isinstance(b, np.ndarray) or is_pandas(b) for b in data):
        return list(data)  # a list of batches (e.g. np.array_split)
    if isinstance(data, (np.ndarray, list, tuple)) or is_pandas(data) or np.isscalar(data):
        return [data]
    if isinstance(data, dict):
        raise TypeError(
            f"{what}: adapt takes the data of this layer's input (an array, DataFrame column, list or "
            "iterable of batches), not a dict"
        )
    if hasattr(data, "__iter__"):
        out = list(data)
        if not out:
            raise ValueError(f"{what}: adapt got an empty iterable of batches")
        return out
    raise TypeError(f"{what}: adapt cannot read data of type {type(data).__name__}")


def numeric_2d(batch, what: str) -> np.ndarray:
    """A batch as float64 (rows, features); NaN marks a missing value; strings are an error."""
    if is_pandas(batch):
        frame = batch.to_frame() if is_series(batch) else batch
        bad = [
            str(c)
            for c, dt in frame.dtypes.items()
            if not (pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt)) and frame[c].notna().any()
        ]
        if bad:
            raise TypeError(f"{what}: adapt data column(s) {bad} are not numeric")
        arr = frame.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        a = np.asarray(batch, dtype=object if isinstance(batch, (list, tuple)) else None)
        if a.dtype.kind in "USO":
            flat = a.reshape(-1)
            strs = [v for v in flat if isinstance(v, (str, bytes))]
            if strs:
                raise TypeError(f"{what}: adapt data holds the string {strs[0]!r}; this layer takes numbers")
            a = np.array([np.nan if v is None else v for v in flat], dtype=np.float64).reshape(a.shape)
        arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if np.isinf(arr).any():
        raise ValueError(f"{what}: adapt data contains infinity")
    return arr


def object_array(batch, what: str) -> np.ndarray:
    """A batch of tokens as a C-contiguous object array (None for missing), for the C++ readers."""
    if is_pandas(batch):
        return np.ascontiguousarray(batch.to_numpy(dtype=object, na_value=None))
    if isinstance(batch, (str, bytes)):
        batch = [batch]
    a = np.asarray(batch, dtype=object) if not isinstance(batch, np.ndarray) else batch
    if a.dtype != object:
        a = a.astype(object)
    return np.ascontiguousarray(a)


def concat_batches(arrays: list[np.ndarray], what: str) -> np.ndarray:
    widths = {a.shape[1:] for a in arrays}
    if len(widths) > 1:
        raise ValueError(f"{what}: adapt batches have different shapes {sorted(widths)}")
    out = np.concatenate(arrays, axis=0)
    if out.shape[0] == 0:
        raise ValueError(f"{what}: adapt data has no rows")
    return out


def check_mode(mode, where: str, allowed=MODES) -> str:
    if mode not in allowed:
        raise ValueError(f"{where}: output_mode must be one of {list(allowed)}, got {mode!r}")
    return mode


def int_arg(value, where: str, arg: str, lo: int = 0, optional: bool = False):
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ValueError(f"{where}: {arg} must be an integer >= {lo}, got {value!r}")
    return int(value)


def float_list(values, where: str, arg: str) -> list[float]:
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{where}: {arg} must be finite numbers")
    return [float(np.float32(v)) for v in a]


class PreprocessingLayer(Layer):
    """Shared plumbing: adapt, state written into the arena at build, eager calls on data."""

    _accepts_missing = False  # NaN may reach this layer from the data boundary
    _takes_strings = False  # may be applied to a string Input (encodes at the data boundary)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._string_input = False

    @property
    def _where(self) -> str:
        return f"{type(self).__name__} '{self.name}'"

    # -- monotone paths (layers/monotonic.py) ---------------------------------------------------
    def monotonic_direction(self):
        """+1 (or -1) when every output column is a non-decreasing (non-increasing) function of its
        input column, None when the layer is not monotone (lookups, hashing, one-hot encodings)."""
        return None

    # -- state ---------------------------------------------------------------------------------
    def _state(self, shapes: dict) -> dict:
        """Values for this layer's non-trainable weights, by name, given their shapes; {} keeps the
        initial values."""
        return {}

    def _on_built(self) -> None:
        """Called once the model's arena exists: writes the adapted or given state into it."""
        specs = self._param_specs()
        state = self._state({p: tuple(s) for p, s, _ in specs})
        if state:
            arena = self._graph.params
            for pname, shape, off in specs:
                if pname in state:
                    arena[off : off + int(np.prod(shape))] = np.asarray(state[pname], np.float32).reshape(-1)

    def _state_changed(self) -> None:
        if self._graph is not None:
            self._on_built()

    # -- eager use: layer(data) ------------------------------------------------------------------
    def __call__(self, inputs, **kwargs):
        if isinstance(inputs, KerasTensor) or (
            isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], KerasTensor)
        ):
            tensors = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
            strings = [t.dtype == "string" for t in tensors]
            if any(strings):
                if not self._takes_strings:
                    raise TypeError(
                        f"{self._where} cannot take the string input '{tensors[0].name}'; "
                        "apply StringLookup or Hashing to string inputs"
                    )
                self._string_input = True
            elif self._requires_strings():
                raise TypeError(
                    f"{self._where} must be applied to a string Input, e.g. "
                    f"Input(shape=(1,), name='home', dtype='string'); got {tensors[0].name!r} of "
                    f"dtype {tensors[0].dtype}"
                )
            return super().__call__(inputs, **kwargs)
        return self._eager(inputs)

    def _requires_strings(self) -> bool:
        return False

    def _eager_input(self, data) -> np.ndarray:
        arr = numeric_2d(data, self._where).astype(np.float32)
        if np.isnan(arr).any() and not self._accepts_missing:
            raise ValueError(f"{self._where}: the data contains NaN; impute missing values first")
        return np.ascontiguousarray(arr)

    def _eager(self, data) -> np.ndarray:
        """Applies the layer to data directly (as calling a Keras layer on an array)."""
        one_d = np.ndim(data) == 1 if not is_pandas(data) else is_series(data)
        x = self._eager_input(data)
        g = _core.Graph()
        node = g.add_layer(self._make_core_named(), [g.add_input(list(x.shape[1:]), "x")])
        g.build(node, 0)
        specs = g.layer_params(node)
        state = (
            self._state({p: tuple(s) for p, s, _ in specs})
            if self._graph is None
            else {p: w for (p, _, _), w in zip(self._param_specs(), self.get_weights())}
        )
        arena = g.params
        for pname, shape, off in specs:
            if pname in state:
                arena[off : off + int(np.prod(shape))] = np.asarray(state[pname], np.float32).reshape(-1)
        y = g.predict([x], 1024)
        if one_d and getattr(self, "output_mode", None) == "int":
            y = y.reshape(-1)
        return y

    def adapt(self, data, batch_size=None, steps=None):
        raise NotImplementedError(f"{type(self).__name__} has no adapt")
