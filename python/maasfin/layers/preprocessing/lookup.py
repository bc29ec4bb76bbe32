"""Categorical preprocessing layers: CategoryEncoding, StringLookup, IntegerLookup."""

from __future__ import annotations

import numpy as np

from maasfin import _core
from maasfin.layers.preprocessing.base import (
    PreprocessingLayer,
    batches,
    check_mode,
    concat_batches,
    int_arg,
    numeric_2d,
    object_array,
)

__all__ = ["CategoryEncoding", "StringLookup", "IntegerLookup"]


class CategoryEncoding(PreprocessingLayer):
    """Integer category ids in [0, num_tokens) -> one_hot / multi_hot / count vectors (Keras)."""

    def __init__(self, num_tokens=None, output_mode="multi_hot", sparse=False, **kwargs):
        super().__init__(**kwargs)
        if sparse:
            raise ValueError(f"{self._where}: sparse outputs are not supported")
        self.num_tokens = int_arg(num_tokens, self._where, "num_tokens", 1)
        self.output_mode = check_mode(output_mode, self._where, ("one_hot", "multi_hot", "count"))
        self.sparse = False

    @property
    def index_limit(self) -> int:
        """Inputs of this layer must be integer category ids in [0, index_limit)."""
        return self.num_tokens

    def _make_core(self):
        return _core.CategoryEncoding(self.num_tokens, self.output_mode, False)

    def get_config(self):
        return {
            **super().get_config(),
            "num_tokens": self.num_tokens,
            "output_mode": self.output_mode,
            "sparse": self.sparse,
        }


class _IndexLookup(PreprocessingLayer):
    """StringLookup and IntegerLookup: Keras's index layout (mask, OOV buckets, vocabulary by
    decreasing frequency, ties by decreasing token as Keras's np.lexsort(...)[::-1])."""

    _accepts_missing = True

    def __init__(
        self,
        max_tokens,
        num_oov_indices,
        mask_token,
        oov_token,
        vocabulary,
        idf_weights,
        invert,
        output_mode,
        sparse,
        pad_to_max_tokens,
        **kwargs,
    ):
        super().__init__(**kwargs)
        where = self._where
        if invert:
            raise ValueError(f"{where}: invert=True is not supported")
        if sparse or idf_weights is not None:
            raise ValueError(f"{where}: sparse outputs and idf_weights are not supported")
        self.max_tokens = int_arg(max_tokens, where, "max_tokens", 1, optional=True)
        self.num_oov_indices = int_arg(num_oov_indices, where, "num_oov_indices", 0)
        self.mask_token = self._token(mask_token, "mask_token") if mask_token is not None else None
        self.oov_token = self._token(oov_token, "oov_token")
        self.output_mode = check_mode(output_mode, where)
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
        if special and tokens[: len(special)] == special:
            tokens = tokens[len(special) :]
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
            raise ValueError(
                f"{self._where}: the vocabulary has {self._token_start() + len(tokens)} indices "
                f"(with special tokens), more than max_tokens={self.max_tokens}"
            )
        if self._graph is not None and self._token_start() + len(tokens) != self.vocabulary_size():
            raise ValueError(
                f"{self._where} is built with {self.vocabulary_size()} indices; a vocabulary of "
                f"{self._token_start() + len(tokens)} cannot replace it. Set it before building the model"
            )
        if self._graph is not None:
            raise ValueError(
                f"{self._where} is already part of a built model; set its vocabulary or adapt it "
                "before building the model"
            )
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
        return {
            **super().get_config(),
            "max_tokens": self.max_tokens,
            "num_oov_indices": self.num_oov_indices,
            "mask_token": self.mask_token,
            "oov_token": self.oov_token,
            "vocabulary": self.vocabulary,
            "output_mode": self.output_mode,
            "pad_to_max_tokens": self.pad_to_max_tokens,
        }


class StringLookup(_IndexLookup):
    """Strings -> integer indices (or one_hot / multi_hot / count), with Keras's layout and
    arguments. Applied to a string `Input`, it converts the column in C++ at the data boundary
    (no Python loop per row): unseen strings go to the OOV index, None/NaN to the mask token
    when one is set (else to the OOV index). Unknown OOV buckets use FarmHash Fingerprint64 as Keras."""

    _takes_strings = True

    def __init__(
        self,
        max_tokens=None,
        num_oov_indices=1,
        mask_token=None,
        oov_token="[UNK]",
        vocabulary=None,
        idf_weights=None,
        invert=False,
        output_mode="int",
        pad_to_max_tokens=False,
        sparse=False,
        encoding="utf-8",
        **kwargs,
    ):
        if encoding not in ("utf-8", "UTF-8"):
            raise ValueError(f"StringLookup: only encoding='utf-8' is supported, got {encoding!r}")
        self._table = None
        super().__init__(
            max_tokens,
            num_oov_indices,
            mask_token,
            oov_token,
            vocabulary,
            idf_weights,
            invert,
            output_mode,
            sparse,
            pad_to_max_tokens,
            **kwargs,
        )

    def _token(self, value, arg):
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        if not isinstance(value, str):
            raise TypeError(f"{self._where}: {arg} must be a string, got {value!r}")
        return value

    def _requires_strings(self) -> bool:
        return True

    def _vocabulary_changed(self) -> None:
        self._table = _core.StringTable(
            self.vocabulary, self.num_oov_indices, self.mask_token, self.output_mode == "int", self._where
        )

    def adapt(self, data, batch_size=None, steps=None):
        if self._graph is not None:
            raise ValueError(f"{self._where} is already part of a built model; adapt it before building the model")
        counter = _core.TokenCounter()
        for b in batches(data, self._where):
            counter.add(object_array(b, self._where), self._where)
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
        a = object_array(data, self._where)
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

    def __init__(
        self,
        max_tokens=None,
        num_oov_indices=1,
        mask_token=None,
        oov_token=-1,
        vocabulary=None,
        vocabulary_dtype="int64",
        idf_weights=None,
        invert=False,
        output_mode="int",
        sparse=False,
        pad_to_max_tokens=False,
        **kwargs,
    ):
        if vocabulary_dtype not in ("int64", "int32"):
            raise ValueError(f"IntegerLookup: vocabulary_dtype must be 'int64' or 'int32', got {vocabulary_dtype!r}")
        self.vocabulary_dtype = vocabulary_dtype
        super().__init__(
            max_tokens,
            num_oov_indices,
            mask_token,
            oov_token,
            vocabulary,
            idf_weights,
            invert,
            output_mode,
            sparse,
            pad_to_max_tokens,
            **kwargs,
        )

    def _token(self, value, arg):
        if isinstance(value, (bool, np.bool_)) or not (
            isinstance(value, (int, np.integer))
            or (isinstance(value, (float, np.floating)) and float(value).is_integer())
        ):
            raise TypeError(f"{self._where}: {arg} must be an integer, got {value!r}")
        return int(value)

    def adapt(self, data, batch_size=None, steps=None):
        if self._graph is not None:
            raise ValueError(f"{self._where} is already part of a built model; adapt it before building the model")
        x = concat_batches([numeric_2d(b, self._where).reshape(-1, 1) for b in batches(data, self._where)], self._where)
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
            raise ValueError(
                f"{self._where} has no vocabulary: call adapt(data) or pass vocabulary= before building the model"
            )
        core = _core.IntegerLookup(self.vocabulary, self.num_oov_indices, self.mask_token, self.output_mode)
        if self.pad_to_max_tokens and self.output_mode != "int":
            raise ValueError(f"{self._where}: pad_to_max_tokens is not supported for IntegerLookup")
        return core

    def get_config(self):
        return {**super().get_config(), "vocabulary_dtype": self.vocabulary_dtype}
