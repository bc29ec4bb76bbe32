"""Keras preprocessing layers for raw tabular data, plus Imputation (which Keras lacks).

Every per-row transform runs in the C++ core: the numeric layers are graph layers whose learned
state (mean/variance, bin boundaries, fill values) is non-trainable weights in the parameter arena,
so it runs inside `predict` and is saved with the weights. Strings never enter the graph: a
StringLookup or Hashing applied to a string `Input` converts a whole column to indices in one C++
call at the data boundary (`_core.StringTable`, `_core.hash_strings`), and its part in the graph
is a CategoryEncoding of those indices.

`adapt(data)` runs once, offline, in NumPy (as Keras): data may be a NumPy array, a pandas
DataFrame/Series, a list, or an iterable of batches (which are concatenated: the statistics are
those of all rows at once).
"""
from __future__ import annotations

import numpy as np

from maasfin import _core, regularizers
from maasfin.layers import KerasTensor, Layer, _deserialize, _initializer_name, _serialize

from maasfin.data import is_frame, is_series, pd

__all__ = ["Normalization", "Discretization", "CategoryEncoding", "IntegerLookup", "StringLookup", "Hashing",
           "HashedCrossing", "Embedding", "Imputation"]

_MODES = ("int", "one_hot", "multi_hot", "count")


def _is_pandas(x) -> bool:
    return is_frame(x) or is_series(x)


def _batches(data, what: str) -> list:
    """adapt's data as a list of batches: one for an array-like, several for an iterable."""
    if data is None:
        raise ValueError(f"{what}: adapt needs data, got None")
    if isinstance(data, (list, tuple)) and data and all(isinstance(b, np.ndarray) or _is_pandas(b) for b in data):
        return list(data)  # a list of batches (e.g. np.array_split)
    if isinstance(data, (np.ndarray, list, tuple)) or _is_pandas(data) or np.isscalar(data):
        return [data]
    if isinstance(data, dict):
        raise TypeError(f"{what}: adapt takes the data of this layer's input (an array, DataFrame column, list or "
                        "iterable of batches), not a dict")
    if hasattr(data, "__iter__"):
        out = list(data)
        if not out:
            raise ValueError(f"{what}: adapt got an empty iterable of batches")
        return out
    raise TypeError(f"{what}: adapt cannot read data of type {type(data).__name__}")


def _numeric_2d(batch, what: str) -> np.ndarray:
    """A batch as float64 (rows, features); NaN marks a missing value; strings are an error."""
    if _is_pandas(batch):
        frame = batch.to_frame() if is_series(batch) else batch
        bad = [str(c) for c, dt in frame.dtypes.items()
               if not (pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt))
               and frame[c].notna().any()]
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


def _object_array(batch, what: str) -> np.ndarray:
    """A batch of tokens as a C-contiguous object array (None for missing), for the C++ readers."""
    if _is_pandas(batch):
        return np.ascontiguousarray(batch.to_numpy(dtype=object, na_value=None))
    if isinstance(batch, (str, bytes)):
        batch = [batch]
    a = np.asarray(batch, dtype=object) if not isinstance(batch, np.ndarray) else batch
    if a.dtype != object:
        a = a.astype(object)
    return np.ascontiguousarray(a)


def _concat(arrays: list[np.ndarray], what: str) -> np.ndarray:
    widths = {a.shape[1:] for a in arrays}
    if len(widths) > 1:
        raise ValueError(f"{what}: adapt batches have different shapes {sorted(widths)}")
    out = np.concatenate(arrays, axis=0)
    if out.shape[0] == 0:
        raise ValueError(f"{what}: adapt data has no rows")
    return out


def _mode(mode, where: str, allowed=_MODES) -> str:
    if mode not in allowed:
        raise ValueError(f"{where}: output_mode must be one of {list(allowed)}, got {mode!r}")
    return mode


def _int_arg(value, where: str, arg: str, lo: int = 0, optional: bool = False):
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ValueError(f"{where}: {arg} must be an integer >= {lo}, got {value!r}")
    return int(value)


def _float_list(values, where: str, arg: str) -> list[float]:
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{where}: {arg} must be finite numbers")
    return [float(np.float32(v)) for v in a]


class _PreprocessingLayer(Layer):
    """Shared plumbing: adapt, state written into the arena at build, eager calls on data."""

    _accepts_missing = False  # NaN may reach this layer from the data boundary
    _takes_strings = False    # may be applied to a string Input (encodes at the data boundary)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._string_input = False

    @property
    def _where(self) -> str:
        return f"{type(self).__name__} '{self.name}'"

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
                    arena[off:off + int(np.prod(shape))] = np.asarray(state[pname], np.float32).reshape(-1)

    def _state_changed(self) -> None:
        if self._graph is not None:
            self._on_built()

    # -- eager use: layer(data) ------------------------------------------------------------------
    def __call__(self, inputs, **kwargs):
        if isinstance(inputs, KerasTensor) or (isinstance(inputs, (list, tuple)) and inputs
                                               and isinstance(inputs[0], KerasTensor)):
            tensors = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
            strings = [t.dtype == "string" for t in tensors]
            if any(strings):
                if not self._takes_strings:
                    raise TypeError(f"{self._where} cannot take the string input '{tensors[0].name}'; "
                                    "apply StringLookup or Hashing to string inputs")
                self._string_input = True
            elif self._requires_strings():
                raise TypeError(f"{self._where} must be applied to a string Input, e.g. "
                                f"Input(shape=(1,), name='home', dtype='string'); got {tensors[0].name!r} of "
                                f"dtype {tensors[0].dtype}")
            return super().__call__(inputs, **kwargs)
        return self._eager(inputs)

    def _requires_strings(self) -> bool:
        return False

    def _eager_input(self, data) -> np.ndarray:
        arr = _numeric_2d(data, self._where).astype(np.float32)
        if np.isnan(arr).any() and not self._accepts_missing:
            raise ValueError(f"{self._where}: the data contains NaN; impute missing values first")
        return np.ascontiguousarray(arr)

    def _eager(self, data) -> np.ndarray:
        """Applies the layer to data directly (as calling a Keras layer on an array)."""
        one_d = np.ndim(data) == 1 if not _is_pandas(data) else is_series(data)
        x = self._eager_input(data)
        g = _core.Graph()
        node = g.add_layer(self._make_core_named(), [g.add_input(list(x.shape[1:]), "x")])
        g.build(node, 0)
        specs = g.layer_params(node)
        state = self._state({p: tuple(s) for p, s, _ in specs}) if self._graph is None else \
            {p: w for (p, _, _), w in zip(self._param_specs(), self.get_weights())}
        arena = g.params
        for pname, shape, off in specs:
            if pname in state:
                arena[off:off + int(np.prod(shape))] = np.asarray(state[pname], np.float32).reshape(-1)
        y = g.predict([x], 1024)
        if one_d and getattr(self, "output_mode", None) == "int":
            y = y.reshape(-1)
        return y

    def adapt(self, data, batch_size=None, steps=None):
        raise NotImplementedError(f"{type(self).__name__} has no adapt")


class Normalization(_PreprocessingLayer):
    """Standardises each feature (last axis): (x - mean) / sqrt(variance), or the inverse with
    `invert=True`. mean/variance come from `adapt(data)` (population variance, as Keras) or are
    given; they are non-trainable weights. Weights: mean, variance (Keras also keeps a count)."""
    _masking = "keep"

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis != -1:
            raise ValueError(f"{self._where}: only axis=-1 (one mean and variance per feature) is supported, "
                             f"got {axis!r}")
        if (mean is None) != (variance is None):
            raise ValueError(f"{self._where}: give both mean and variance, or neither (and call adapt)")
        self.axis, self.invert = -1, bool(invert)
        self.mean = None if mean is None else (_float_list(mean, self._where, "mean")
                                               if np.ndim(mean) else float(mean))
        self.variance = None if variance is None else (_float_list(variance, self._where, "variance")
                                                       if np.ndim(variance) else float(variance))
        if self.variance is not None and np.any(np.asarray(self.variance) < 0):
            raise ValueError(f"{self._where}: variance must be >= 0")
        self._adapted = None  # (mean, variance) arrays from adapt

    def _make_core(self):
        return _core.Normalization(self.invert)

    def adapt(self, data, batch_size=None, steps=None):
        if self.mean is not None:
            raise ValueError(f"{self._where}: mean and variance were given; adapt is only for layers built without them")
        x = _concat([_numeric_2d(b, self._where) for b in _batches(data, self._where)], self._where)
        x = x.reshape(-1, x.shape[-1])
        missing = np.isnan(x).any(axis=0)
        if missing.any():
            col = int(np.flatnonzero(missing)[0])
            raise ValueError(f"{self._where}: adapt data has missing values (NaN) in feature {col}; put an "
                             "Imputation layer before Normalization")
        self._check_width(x.shape[-1])
        self._adapted = (x.mean(axis=0), x.var(axis=0))
        self._state_changed()

    def _check_width(self, c: int) -> None:
        if self._output_shape is not None and self._output_shape[-1] != c:
            raise ValueError(f"{self._where} is built for {self._output_shape[-1]} features, the adapt data has {c}")

    def _state(self, shapes):
        c = shapes["mean"][0]
        if self._adapted is not None:
            mean, var = self._adapted
        elif self.mean is not None:
            mean, var = self.mean, self.variance
        else:
            return {}
        mean, var = np.broadcast_to(np.asarray(mean, np.float64), (c,)), np.broadcast_to(np.asarray(var, np.float64), (c,))
        return {"mean": mean, "variance": var}

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "mean": self.mean, "variance": self.variance,
                "invert": self.invert}


class Discretization(_PreprocessingLayer):
    """Buckets numbers by `bin_boundaries` (bucket i holds boundaries[i-1] <= x < boundaries[i], as
    numpy.digitize), or by `num_bins` quantile boundaries learned with `adapt` (Keras's algorithm:
    the same summary with `epsilon`, so the same boundaries). The boundaries are non-trainable
    weights ("bin_boundaries") and also appear in the config after adapt, as in Keras."""

    def __init__(self, bin_boundaries=None, num_bins=None, epsilon=0.01, output_mode="int", sparse=False, **kwargs):
        super().__init__(**kwargs)
        if sparse:
            raise ValueError(f"{self._where}: sparse outputs are not supported")
        if bin_boundaries is not None and num_bins is not None:
            raise ValueError(f"{self._where}: give either bin_boundaries or num_bins, not both")
        if bin_boundaries is None and num_bins is None:
            raise ValueError(f"{self._where}: give bin_boundaries or num_bins (and call adapt)")
        self.num_bins = _int_arg(num_bins, self._where, "num_bins", 2, optional=True)
        self.bin_boundaries = None
        if bin_boundaries is not None:
            self.bin_boundaries = self._boundaries(bin_boundaries)
        if not (isinstance(epsilon, (int, float)) and 0 < epsilon < 1):
            raise ValueError(f"{self._where}: epsilon must be in (0, 1), got {epsilon!r}")
        self.epsilon = float(epsilon)
        self.output_mode = _mode(output_mode, self._where)
        self.sparse = False

    def _boundaries(self, values) -> list[float]:
        b = _float_list(values, self._where, "bin_boundaries")
        if not b:
            raise ValueError(f"{self._where}: bin_boundaries must hold at least one value")
        if any(b2 < b1 for b1, b2 in zip(b, b[1:])):
            raise ValueError(f"{self._where}: bin_boundaries must be sorted ascending, got {b}")
        return b

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        boundaries = config.pop("bin_boundaries", None) if config.get("num_bins") is not None else None
        layer = cls(**config)
        if boundaries is not None:
            layer.bin_boundaries = layer._boundaries(boundaries)
        return layer

    def _make_core(self):
        if self.bin_boundaries is None:
            raise ValueError(f"{self._where} has no bin boundaries yet: call adapt(data) before building the "
                             "model, or give bin_boundaries")
        return _core.Discretization(len(self.bin_boundaries), self.output_mode)

    def adapt(self, data, batch_size=None, steps=None):
        if self.num_bins is None:
            raise ValueError(f"{self._where} was given bin_boundaries; adapt needs num_bins instead")
        summary = np.array([[], []], dtype=np.float32)
        for b in _batches(data, self._where):
            values = _numeric_2d(b, self._where).reshape(-1)
            values = values[~np.isnan(values)].astype(np.float32)  # missing values carry no quantile
            if values.size:
                summary = _merge_summaries(summary, _summarize(values, self.epsilon), self.epsilon)
        if summary.shape[1] == 0:
            raise ValueError(f"{self._where}: adapt data has no values (all missing)")
        boundaries = _compress_summary(summary, 1.0 / self.num_bins)[0, :-1]
        if boundaries.size == 0:
            raise ValueError(f"{self._where}: adapt data has a single value; no bin boundary can be learned")
        if self._graph is not None and boundaries.size != len(self.bin_boundaries or []):
            raise ValueError(f"{self._where} is built with {len(self.bin_boundaries or [])} boundaries; adapt "
                             f"learned {boundaries.size}. Adapt before building the model")
        self.bin_boundaries = [float(v) for v in boundaries.astype(np.float32)]
        self._state_changed()

    def _state(self, shapes):
        return {"bin_boundaries": np.asarray(self.bin_boundaries)}

    def get_config(self):
        boundaries = self.bin_boundaries
        if self._graph is not None:  # the weights are the truth once built (set_weights, load)
            boundaries = [float(v) for v in self.get_weights()[0]]
        return {**super().get_config(), "bin_boundaries": boundaries, "num_bins": self.num_bins,
                "epsilon": self.epsilon, "output_mode": self.output_mode, "sparse": self.sparse}


# Keras's quantile summary (keras/src/layers/preprocessing/discretization.py), in float32 as Keras.
def _summarize(values: np.ndarray, epsilon: float) -> np.ndarray:
    values = np.sort(values.reshape(-1))
    increment = values.size / (1.0 / epsilon)
    step = max(increment, 1)
    boundaries = values[int(increment)::int(step)]
    return np.stack([boundaries, np.ones_like(boundaries) * step])


def _merge_summaries(prev: np.ndarray, nxt: np.ndarray, epsilon: float) -> np.ndarray:
    merged = np.concatenate((prev, nxt), axis=1)
    merged = np.take(merged, np.argsort(merged[0]), axis=1)
    return _compress_summary(merged, epsilon)


def _compress_summary(summary: np.ndarray, epsilon: float) -> np.ndarray:
    if summary.shape[1] * epsilon < 1:
        return summary
    percents = epsilon + np.arange(0.0, 1.0, epsilon)
    cum_weights = summary[1].cumsum()
    cum_weight_percents = cum_weights / cum_weights[-1]
    new_bins = np.interp(percents, cum_weight_percents, summary[0])
    cum_weights = np.interp(percents, cum_weight_percents, cum_weights)
    new_weights = cum_weights - np.concatenate((np.array([0]), cum_weights[:-1]))
    return np.stack((new_bins, new_weights)).astype("float32")


class CategoryEncoding(_PreprocessingLayer):
    """Integer category ids in [0, num_tokens) -> one_hot / multi_hot / count vectors (Keras)."""

    def __init__(self, num_tokens=None, output_mode="multi_hot", sparse=False, **kwargs):
        super().__init__(**kwargs)
        if sparse:
            raise ValueError(f"{self._where}: sparse outputs are not supported")
        self.num_tokens = _int_arg(num_tokens, self._where, "num_tokens", 1)
        self.output_mode = _mode(output_mode, self._where, ("one_hot", "multi_hot", "count"))
        self.sparse = False

    def _make_core(self):
        return _core.CategoryEncoding(self.num_tokens, self.output_mode, False)

    def get_config(self):
        return {**super().get_config(), "num_tokens": self.num_tokens, "output_mode": self.output_mode,
                "sparse": self.sparse}


class _IndexLookup(_PreprocessingLayer):
    """StringLookup and IntegerLookup: Keras's index layout (mask, OOV buckets, vocabulary by
    decreasing frequency, ties by decreasing token as Keras's np.lexsort(...)[::-1])."""

    _accepts_missing = True

    def __init__(self, max_tokens, num_oov_indices, mask_token, oov_token, vocabulary, idf_weights, invert,
                 output_mode, sparse, pad_to_max_tokens, **kwargs):
        super().__init__(**kwargs)
        where = self._where
        if invert:
            raise ValueError(f"{where}: invert=True is not supported")
        if sparse or idf_weights is not None:
            raise ValueError(f"{where}: sparse outputs and idf_weights are not supported")
        self.max_tokens = _int_arg(max_tokens, where, "max_tokens", 1, optional=True)
        self.num_oov_indices = _int_arg(num_oov_indices, where, "num_oov_indices", 0)
        self.mask_token = self._token(mask_token, "mask_token") if mask_token is not None else None
        self.oov_token = self._token(oov_token, "oov_token")
        self.output_mode = _mode(output_mode, where)
        self.pad_to_max_tokens = bool(pad_to_max_tokens)
        if self.pad_to_max_tokens and self.max_tokens is None:
            raise ValueError(f"{where}: pad_to_max_tokens=True needs max_tokens")
        self.invert, self.sparse = False, False
        self.vocabulary = None
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)

    def _token(self, value, arg):
        raise NotImplementedError

    def _oov_start(self) -> int:
        return 1 if self.mask_token is not None and self.output_mode == "int" else 0

    def _token_start(self) -> int:
        return self._oov_start() + self.num_oov_indices

    def set_vocabulary(self, vocabulary, idf_weights=None):
        """Sets the vocabulary (without special tokens, or with them first in Keras's order)."""
        if idf_weights is not None:
            raise ValueError(f"{self._where}: idf_weights are not supported")
        if isinstance(vocabulary, str):
            raise ValueError(f"{self._where}: vocabulary files are not supported; pass a list of tokens")
        tokens = [self._token(v, "vocabulary entry") for v in list(np.asarray(vocabulary, dtype=object).reshape(-1))]
        special = [self.mask_token] * self._oov_start() + [self.oov_token] * self.num_oov_indices
        if special and tokens[:len(special)] == special:
            tokens = tokens[len(special):]
        if not tokens:
            raise ValueError(f"{self._where}: the vocabulary is empty")
        if len(set(tokens)) != len(tokens):
            seen, rep = set(), []
            for t in tokens:
                if t in seen:
                    rep.append(t)
                seen.add(t)
            raise ValueError(f"{self._where}: the vocabulary repeats token(s) {rep[:10]}")
        if self.mask_token is not None and self.mask_token in tokens:
            raise ValueError(f"{self._where}: the vocabulary holds the mask token {self.mask_token!r}")
        if self.max_tokens is not None and self._token_start() + len(tokens) > self.max_tokens:
            raise ValueError(f"{self._where}: the vocabulary has {self._token_start() + len(tokens)} indices "
                             f"(with special tokens), more than max_tokens={self.max_tokens}")
        if self._graph is not None and self._token_start() + len(tokens) != self.vocabulary_size():
            raise ValueError(f"{self._where} is built with {self.vocabulary_size()} indices; a vocabulary of "
                             f"{self._token_start() + len(tokens)} cannot replace it. Set it before building the model")
        if self._graph is not None:
            raise ValueError(f"{self._where} is already part of a built model; set its vocabulary or adapt it "
                             "before building the model")
        self.vocabulary = tokens
        self._vocabulary_changed()

    def _vocabulary_changed(self) -> None:
        pass

    def vocabulary_size(self) -> int:
        if self.vocabulary is None:
            raise ValueError(f"{self._where} has no vocabulary yet: call adapt(data) or pass vocabulary=")
        if self.pad_to_max_tokens and self.output_mode != "int":
            return self.max_tokens
        return self._token_start() + len(self.vocabulary)

    def get_vocabulary(self, include_special_tokens=True) -> list:
        if self.vocabulary is None:
            return []
        special = [self.mask_token] * self._oov_start() + [self.oov_token] * self.num_oov_indices
        return (special if include_special_tokens else []) + list(self.vocabulary)

    def _learned(self, tokens: list, what_max: int | None) -> None:
        self.vocabulary = None
        if not tokens:
            raise ValueError(f"{self._where}: adapt data has no values (all missing)")
        self.set_vocabulary(tokens)

    def _max_learned(self) -> int:
        return -1 if self.max_tokens is None else max(0, self.max_tokens - self._token_start())

    def get_config(self):
        return {**super().get_config(), "max_tokens": self.max_tokens, "num_oov_indices": self.num_oov_indices,
                "mask_token": self.mask_token, "oov_token": self.oov_token, "vocabulary": self.vocabulary,
                "output_mode": self.output_mode, "pad_to_max_tokens": self.pad_to_max_tokens}


class StringLookup(_IndexLookup):
    """Strings -> integer indices (or one_hot / multi_hot / count), with Keras's layout and
    arguments. Applied to a string `Input`, it converts the column in C++ at the data boundary
    (no Python loop per row): unseen strings go to the OOV index, None/NaN to the mask token
    when one is set (else to the OOV index). Unknown OOV buckets use FarmHash Fingerprint64 as Keras."""

    _takes_strings = True

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token="[UNK]", vocabulary=None,
                 idf_weights=None, invert=False, output_mode="int", pad_to_max_tokens=False, sparse=False,
                 encoding="utf-8", **kwargs):
        if encoding not in ("utf-8", "UTF-8"):
            raise ValueError(f"StringLookup: only encoding='utf-8' is supported, got {encoding!r}")
        self._table = None
        super().__init__(max_tokens, num_oov_indices, mask_token, oov_token, vocabulary, idf_weights, invert,
                         output_mode, sparse, pad_to_max_tokens, **kwargs)

    def _token(self, value, arg):
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        if not isinstance(value, str):
            raise TypeError(f"{self._where}: {arg} must be a string, got {value!r}")
        return value

    def _requires_strings(self) -> bool:
        return True

    def _vocabulary_changed(self) -> None:
        self._table = _core.StringTable(self.vocabulary, self.num_oov_indices, self.mask_token,
                                        self.output_mode == "int", self._where)

    def adapt(self, data, batch_size=None, steps=None):
        if self._graph is not None:
            raise ValueError(f"{self._where} is already part of a built model; adapt it before building the model")
        counter = _core.TokenCounter()
        for b in _batches(data, self._where):
            counter.add(_object_array(b, self._where), self._where)
        exclude = [t for t in (self.mask_token, self.oov_token) if t is not None]
        self._learned(counter.vocabulary(self._max_learned(), exclude), self.max_tokens)

    def _encode(self, column: np.ndarray, what: str) -> np.ndarray:
        """Indices (float32) of an object array of str/None/NaN: the data-boundary conversion."""
        if self._table is None:
            raise ValueError(f"{self._where} has no vocabulary: call adapt(data) or pass vocabulary=")
        return self._table.lookup(column, what)

    def _make_core(self):
        return _core.CategoryEncoding(self.vocabulary_size(), self.output_mode, True)

    def _eager(self, data):
        a = _object_array(data, self._where)
        x = self._encode(a.reshape(a.shape[0], -1) if a.ndim > 1 else a.reshape(-1, 1), self._where)
        g = _core.Graph()
        node = g.add_layer(self._make_core_named(), [g.add_input([x.shape[1]], "x")])
        g.build(node, 0)
        y = g.predict([np.ascontiguousarray(x)], 1024)
        return y.reshape(-1) if a.ndim == 1 and self.output_mode == "int" else y

    def get_config(self):
        return {**super().get_config(), "encoding": "utf-8"}


class IntegerLookup(_IndexLookup):
    """Integers -> indices (or one_hot / multi_hot / count) with Keras's layout and arguments; a
    graph layer (C++ hash map). NaN is a missing value: the mask index when mask_token is set,
    else the OOV index. Several OOV buckets: token mod num_oov_indices (as Keras)."""

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token=-1, vocabulary=None,
                 vocabulary_dtype="int64", idf_weights=None, invert=False, output_mode="int", sparse=False,
                 pad_to_max_tokens=False, **kwargs):
        if vocabulary_dtype not in ("int64", "int32"):
            raise ValueError(f"IntegerLookup: vocabulary_dtype must be 'int64' or 'int32', got {vocabulary_dtype!r}")
        self.vocabulary_dtype = vocabulary_dtype
        super().__init__(max_tokens, num_oov_indices, mask_token, oov_token, vocabulary, idf_weights, invert,
                         output_mode, sparse, pad_to_max_tokens, **kwargs)

    def _token(self, value, arg):
        if isinstance(value, (bool, np.bool_)) or not (isinstance(value, (int, np.integer)) or
                                                       (isinstance(value, (float, np.floating)) and float(value).is_integer())):
            raise TypeError(f"{self._where}: {arg} must be an integer, got {value!r}")
        return int(value)

    def adapt(self, data, batch_size=None, steps=None):
        if self._graph is not None:
            raise ValueError(f"{self._where} is already part of a built model; adapt it before building the model")
        x = _concat([_numeric_2d(b, self._where).reshape(-1, 1) for b in _batches(data, self._where)], self._where)
        x = x[~np.isnan(x)]
        if x.size and not np.all(x == np.floor(x)):
            raise ValueError(f"{self._where}: adapt data holds non-integer value {x[x != np.floor(x)][0]!r}")
        tokens, counts = np.unique(x.astype(np.int64), return_counts=True)
        keep = ~np.isin(tokens, [t for t in (self.mask_token, self.oov_token) if t is not None])
        tokens, counts = tokens[keep], counts[keep]
        order = np.lexsort((tokens, counts))[::-1]  # Keras: by count, ties by token, both descending
        n = self._max_learned()
        self._learned([int(t) for t in tokens[order][: None if n < 0 else n]], self.max_tokens)

    def _make_core(self):
        if self.vocabulary is None:
            raise ValueError(f"{self._where} has no vocabulary: call adapt(data) or pass vocabulary= before "
                             "building the model")
        core = _core.IntegerLookup(self.vocabulary, self.num_oov_indices, self.mask_token, self.output_mode)
        if self.pad_to_max_tokens and self.output_mode != "int":
            raise ValueError(f"{self._where}: pad_to_max_tokens is not supported for IntegerLookup")
        return core

    def get_config(self):
        return {**super().get_config(), "vocabulary_dtype": self.vocabulary_dtype}


class Hashing(_PreprocessingLayer):
    """Hashes values into `num_bins` bins with FarmHash Fingerprint64, exactly as Keras (TensorFlow's
    to_hash_bucket_fast): strings as their UTF-8 bytes, integers as their decimal string. With
    `mask_value`, the mask (and a missing value) goes to bin 0 and the rest to 1 + hash % (num_bins - 1).
    String inputs are hashed at the data boundary, numbers inside the graph."""

    _takes_strings = True

    def __init__(self, num_bins, mask_value=None, salt=None, output_mode="int", sparse=False, **kwargs):
        super().__init__(**kwargs)
        if salt is not None:
            raise ValueError(f"{self._where}: salt (keyed SipHash) is not supported")
        if sparse:
            raise ValueError(f"{self._where}: sparse outputs are not supported")
        self.num_bins = _int_arg(num_bins, self._where, "num_bins", 2 if mask_value is not None else 1)
        if mask_value is not None and not isinstance(mask_value, (str, int, np.integer)) or isinstance(mask_value, bool):
            raise TypeError(f"{self._where}: mask_value must be a string or an integer, got {mask_value!r}")
        self.mask_value = int(mask_value) if isinstance(mask_value, np.integer) else mask_value
        self.salt, self.sparse = None, False
        self.output_mode = _mode(output_mode, self._where)

    @property
    def _accepts_missing(self) -> bool:
        return self.mask_value is not None

    def _encode(self, column: np.ndarray, what: str) -> np.ndarray:
        mask = None if self.mask_value is None else str(self.mask_value)
        return _core.hash_strings(column, self.num_bins, mask, what)

    def _make_core(self):
        if self._string_input:
            return _core.CategoryEncoding(self.num_bins, self.output_mode, False)
        if isinstance(self.mask_value, str):
            raise ValueError(f"{self._where}: a string mask_value needs a string input")
        return _core.Hashing(self.num_bins, self.mask_value, self.output_mode)

    def _eager(self, data):
        a = np.asarray(data, dtype=object) if not isinstance(data, np.ndarray) and not _is_pandas(data) else data
        if (_is_pandas(a) and not pd.api.types.is_numeric_dtype(getattr(a, "dtype", object))) or \
                (isinstance(a, np.ndarray) and a.dtype.kind in "OUS" and
                 any(isinstance(v, (str, bytes)) for v in a.reshape(-1))):
            cells = _object_array(a, self._where)
            y = self._encode(cells, self._where)
            if self.output_mode == "int":
                return y
            x = np.ascontiguousarray(y.reshape(y.shape[0], -1))
            g = _core.Graph()
            node = g.add_layer(_core.CategoryEncoding(self.num_bins, self.output_mode, False),
                               [g.add_input([x.shape[1]], "x")])
            g.build(node, 0)
            return g.predict([x], 1024)
        return super()._eager(data)

    def get_config(self):
        return {**super().get_config(), "num_bins": self.num_bins, "mask_value": self.mask_value,
                "salt": self.salt, "output_mode": self.output_mode, "sparse": self.sparse}


class HashedCrossing(_PreprocessingLayer):
    """Crosses 2+ integer category features into `num_bins` bins, as Keras's HashedCrossing: each
    input has shape (1,) and holds an integer value (a lookup's int index, a Discretization bin, a
    raw integer feature); the tuple of values, in input order, is hashed as tf.sparse.cross_hashed
    does with its default key: h = 0xDECAFCAFFE, then h = FingerprintCat64(h, uint64(value)) per
    input, bin = h % num_bins. A stable function of the values: the same everywhere, in every
    release. output_mode "int" gives the bin (shape (1,)), "one_hot" a (num_bins,) vector. Values
    that are not integers (fractions, NaN) are an error naming the layer. Runs in the C++ graph."""

    def __init__(self, num_bins, output_mode="int", sparse=False, **kwargs):
        super().__init__(**kwargs)
        if sparse:
            raise ValueError(f"{self._where}: sparse outputs are not supported")
        self.num_bins = _int_arg(num_bins, self._where, "num_bins", 1)
        self.output_mode = _mode(output_mode, self._where, ("int", "one_hot"))
        self.sparse = False

    def _make_core(self):
        return _core.HashedCrossing(self.num_bins, self.output_mode)

    def _eager(self, data):
        if not isinstance(data, (list, tuple)) or len(data) < 2:
            got = type(data).__name__ + (f" of length {len(data)}" if isinstance(data, (list, tuple)) else "")
            raise ValueError(f"{self._where} crosses 2 or more inputs: call it on a list or tuple of arrays, "
                             f"got {got}")
        one_d = all(np.ndim(d) == 1 for d in data)
        xs = []
        for i, d in enumerate(data):
            x = _numeric_2d(d, f"{self._where} input {i}").astype(np.float32)
            if x.shape[1] != 1:
                raise ValueError(f"{self._where}: input {i} has {x.shape[1]} columns; each input must hold one "
                                 "value per sample, shape (batch,) or (batch, 1)")
            xs.append(np.ascontiguousarray(x))
        if len({x.shape[0] for x in xs}) != 1:
            raise ValueError(f"{self._where}: the inputs have different numbers of rows {[x.shape[0] for x in xs]}")
        g = _core.Graph()
        node = g.add_layer(self._make_core_named(), [g.add_input([1], f"x{i}") for i in range(len(xs))])
        g.build(node, 0)
        y = g.predict(xs, 1024)
        return y.reshape(-1) if one_d and self.output_mode == "int" else y

    def get_config(self):
        return {**super().get_config(), "num_bins": self.num_bins, "output_mode": self.output_mode,
                "sparse": self.sparse}


class Embedding(Layer):
    """Turns integer indices in [0, input_dim) into dense vectors: (batch, L) -> (batch, L, output_dim).
    Weights: embeddings (input_dim, output_dim), trainable; initialised U(-0.05, 0.05) ("uniform")
    as Keras. mask_zero=True attaches the mask `indices != 0` to the output (Keras semantics)."""

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", embeddings_regularizer=None,
                 embeddings_constraint=None, mask_zero=False, weights=None, lora_rank=None, **kwargs):
        super().__init__(**kwargs)
        where = f"Embedding '{self.name}'"
        if weights is not None or lora_rank is not None:
            raise ValueError(f"{where}: weights and lora_rank are not supported")
        self.input_dim = _int_arg(input_dim, where, "input_dim", 1)
        self.output_dim = _int_arg(output_dim, where, "output_dim", 1)
        init = "random_uniform" if embeddings_initializer in ("uniform", "RandomUniform") else embeddings_initializer
        self.embeddings_initializer = _initializer_name(init, where, "embeddings_initializer")
        self.embeddings_regularizer = _deserialize(embeddings_regularizer, regularizers, "regularizer")
        from maasfin import constraints
        self.embeddings_constraint = _deserialize(embeddings_constraint, constraints, "constraint")
        self.mask_zero = bool(mask_zero)

    def _mask_flow(self, masks, sources):
        # Keras: with mask_zero the output's mask is `indices != 0` (index 0 is then reserved).
        self._mask_in = None
        if any(m is not None for m in masks):
            from maasfin.layers import _mask_dropped
            _mask_dropped(self)
        if not self.mask_zero:
            return None
        from maasfin.layers import _Mask
        return _Mask(sources[0], 0.0)

    def _make_core(self):
        return _core.Embedding(self.input_dim, self.output_dim, self.embeddings_initializer)

    def _regularization(self):
        penalties, cons = [], []
        for pname, shape, off in self._param_specs():
            size = int(np.prod(shape))
            reg = self.embeddings_regularizer
            if reg is not None and (reg.l1 or reg.l2):
                penalties.append((off, off + size, reg.l1, reg.l2))
            if self.embeddings_constraint is not None:
                cons.append(self.embeddings_constraint._spec(off, tuple(shape)))
        return penalties, cons

    @property
    def embeddings(self) -> np.ndarray:
        return self.get_weights()[0]

    def get_config(self):
        init = "uniform" if self.embeddings_initializer == "random_uniform" else self.embeddings_initializer
        cfg = {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
               "embeddings_initializer": init, "mask_zero": self.mask_zero}
        for arg in ("embeddings_regularizer", "embeddings_constraint"):
            if getattr(self, arg) is not None:
                cfg[arg] = _serialize(getattr(self, arg))
        return cfg


class Imputation(_PreprocessingLayer):
    """Fills missing values (NaN) per feature; Keras has no such layer. `strategy`: "median" or
    "mean" (learned by adapt, ignoring missing values), "most_frequent" (smallest mode), or
    "constant" (`fill_value`, default 0). `add_indicator=True` appends one 0/1 column per feature
    that marks the missing values: (batch, C) -> (batch, 2C). Weights: fill_value (C,), non-trainable.
    Inputs feeding only Imputation (or lookups) may hold NaN at fit/predict."""

    _accepts_missing = True
    _STRATEGIES = ("median", "mean", "most_frequent", "constant")

    def __init__(self, strategy="median", fill_value=None, add_indicator=False, **kwargs):
        super().__init__(**kwargs)
        if strategy not in self._STRATEGIES:
            raise ValueError(f"{self._where}: strategy must be one of {list(self._STRATEGIES)}, got {strategy!r}")
        if fill_value is not None and strategy != "constant":
            raise ValueError(f"{self._where}: fill_value is only used with strategy='constant'")
        if fill_value is not None and (isinstance(fill_value, bool) or not isinstance(fill_value, (int, float))
                                       or not np.isfinite(fill_value)):
            raise ValueError(f"{self._where}: fill_value must be a finite number, got {fill_value!r}")
        self.strategy = strategy
        self.fill_value = None if fill_value is None else float(fill_value)
        self.add_indicator = bool(add_indicator)
        self._adapted = None

    def _make_core(self):
        return _core.Imputation(self.add_indicator)

    def adapt(self, data, batch_size=None, steps=None):
        if self.strategy == "constant":
            return
        x = _concat([_numeric_2d(b, self._where) for b in _batches(data, self._where)], self._where)
        if x.ndim != 2:
            raise ValueError(f"{self._where}: adapt data must be (rows, features), got shape {x.shape}")
        present = ~np.isnan(x)
        empty = np.flatnonzero(~present.any(axis=0))
        if empty.size:
            raise ValueError(f"{self._where}: adapt data feature(s) {empty.tolist()} are entirely missing; "
                             f"the {self.strategy} cannot be learned (use strategy='constant')")
        if self._output_shape is not None and x.shape[1] != self._param_specs()[0][1][0]:
            raise ValueError(f"{self._where} is built for {self._param_specs()[0][1][0]} features, the adapt "
                             f"data has {x.shape[1]}")
        if self.strategy == "median":
            fill = np.nanmedian(x, axis=0)
        elif self.strategy == "mean":
            fill = np.nanmean(x, axis=0)
        else:
            fill = np.empty(x.shape[1])
            for j in range(x.shape[1]):
                values, counts = np.unique(x[present[:, j], j], return_counts=True)
                fill[j] = values[np.argmax(counts)]
        self._adapted = fill
        self._state_changed()

    def _state(self, shapes):
        c = shapes["fill_value"][0]
        if self.strategy == "constant":
            return {"fill_value": np.full(c, 0.0 if self.fill_value is None else self.fill_value)}
        if self._adapted is None:
            return {}
        if self._adapted.size != c:
            raise ValueError(f"{self._where} was adapted on {self._adapted.size} features but is applied to {c}")
        return {"fill_value": self._adapted}

    def get_config(self):
        return {**super().get_config(), "strategy": self.strategy, "fill_value": self.fill_value,
                "add_indicator": self.add_indicator}


