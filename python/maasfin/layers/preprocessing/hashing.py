"""Hashing preprocessing layers: Hashing and HashedCrossing."""

from __future__ import annotations

import numpy as np

from maasfin import _core
from maasfin.data import pd
from maasfin.layers.preprocessing.base import (
    PreprocessingLayer,
    check_mode,
    int_arg,
    is_pandas,
    numeric_2d,
    object_array,
)

__all__ = ["Hashing", "HashedCrossing"]


class Hashing(PreprocessingLayer):
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
        self.num_bins = int_arg(num_bins, self._where, "num_bins", 2 if mask_value is not None else 1)
        if (
            mask_value is not None
            and not isinstance(mask_value, (str, int, np.integer))
            or isinstance(mask_value, bool)
        ):
            raise TypeError(f"{self._where}: mask_value must be a string or an integer, got {mask_value!r}")
        self.mask_value = int(mask_value) if isinstance(mask_value, np.integer) else mask_value
        self.salt, self.sparse = None, False
        self.output_mode = check_mode(output_mode, self._where)

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
        a = np.asarray(data, dtype=object) if not isinstance(data, np.ndarray) and not is_pandas(data) else data
        if (is_pandas(a) and not pd.api.types.is_numeric_dtype(getattr(a, "dtype", object))) or (
            isinstance(a, np.ndarray)
            and a.dtype.kind in "OUS"
            and any(isinstance(v, (str, bytes)) for v in a.reshape(-1))
        ):
            cells = object_array(a, self._where)
            y = self._encode(cells, self._where)
            if self.output_mode == "int":
                return y
            x = np.ascontiguousarray(y.reshape(y.shape[0], -1))
            g = _core.Graph()
            node = g.add_layer(
                _core.CategoryEncoding(self.num_bins, self.output_mode, False), [g.add_input([x.shape[1]], "x")]
            )
            g.build(node, 0)
            return g.predict([x], 1024)
        return super()._eager(data)

    def get_config(self):
        return {
            **super().get_config(),
            "num_bins": self.num_bins,
            "mask_value": self.mask_value,
            "salt": self.salt,
            "output_mode": self.output_mode,
            "sparse": self.sparse,
        }


class HashedCrossing(PreprocessingLayer):
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
        self.num_bins = int_arg(num_bins, self._where, "num_bins", 1)
        self.output_mode = check_mode(output_mode, self._where, ("int", "one_hot"))
        self.sparse = False

    def _make_core(self):
        return _core.HashedCrossing(self.num_bins, self.output_mode)

    def _eager(self, data):
        if not isinstance(data, (list, tuple)) or len(data) < 2:
            got = type(data).__name__ + (f" of length {len(data)}" if isinstance(data, (list, tuple)) else "")
            raise ValueError(f"{self._where} crosses 2 or more inputs: call it on a list or tuple of arrays, got {got}")
        one_d = all(np.ndim(d) == 1 for d in data)
        xs = []
        for i, d in enumerate(data):
            x = numeric_2d(d, f"{self._where} input {i}").astype(np.float32)
            if x.shape[1] != 1:
                raise ValueError(
                    f"{self._where}: input {i} has {x.shape[1]} columns; each input must hold one "
                    "value per sample, shape (batch,) or (batch, 1)"
                )
            xs.append(np.ascontiguousarray(x))
        if len({x.shape[0] for x in xs}) != 1:
            raise ValueError(f"{self._where}: the inputs have different numbers of rows {[x.shape[0] for x in xs]}")
        g = _core.Graph()
        node = g.add_layer(self._make_core_named(), [g.add_input([1], f"x{i}") for i in range(len(xs))])
        g.build(node, 0)
        y = g.predict(xs, 1024)
        return y.reshape(-1) if one_d and self.output_mode == "int" else y

    def get_config(self):
        return {
            **super().get_config(),
            "num_bins": self.num_bins,
            "output_mode": self.output_mode,
            "sparse": self.sparse,
        }
