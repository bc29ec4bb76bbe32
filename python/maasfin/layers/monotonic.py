"""MonotonicDense and the monotone-path analysis that carries declared effects from raw features.

`MonotonicDense` is monotone by construction (cpp/src/layers/monotonic_dense.cpp): its forward
pass multiplies by s_i |W_ij| for an input with indicator s_i = +1/-1, whatever the stored kernel
holds (after training, set_weights or a loaded file). Indicators may be declared per raw feature
name (`monotonicity_indicator={"Income": -1}`): when the layer is called, the analysis below
follows each encoded column of its input back to the raw feature it comes from and the direction
in which it moves with it, and resolves the dict to one indicator per column.

A model containing such a layer checks, when it is built, that every declared feature reaches the
output only through monotone layers and in its declared direction (`check_monotone_paths`).
Preprocessing layers state their direction with the protocol method `monotonic_direction()`
(+1, -1 or None) and, when their output is wider than their input, `monotonic_columns(width)`
((input column, moves with its value) per output column; a missing-value indicator comes from its
feature but stays constant while the value is present).
"""

from __future__ import annotations

import numpy as np

from maasfin import _core, constraints, regularizers
from maasfin.layers.base import (
    InputLayer,
    KerasTensor,
    KernelBiasMixin,
    Layer,
    activation_name,
    deserialize,
    initializer_name,
    serialize,
)
from maasfin.layers.core import Activation, Dropout
from maasfin.layers.merge import Add, Average, Concatenate, Maximum, Minimum, Subtract
from maasfin.layers.noise import GaussianDropout, GaussianNoise
from maasfin.layers.spatial import Flatten

__all__ = [
    "MonotonicDense",
    "MONOTONE_ACTIVATIONS",
    "column_sources",
    "feature_columns",
    "declared_monotonicity",
    "check_monotone_paths",
]

MONOTONE_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "elu", "selu", "leaky_relu")


def _indicator_value(v, where: str, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer, float)) or v not in (-1, 0, 1):
        raise ValueError(f"{where}: monotonicity_indicator {what} must be -1, 0 or 1, got {v!r}")
    return int(v)


class MonotonicDense(KernelBiasMixin, Layer):
    """A Dense layer monotone by construction in the inputs its `monotonicity_indicator` names.

    monotonicity_indicator: 1, -1 or 0 for every input; a list with one value per input feature;
    or a dict {raw feature name: 1 or -1} resolved to the encoded columns of each feature when
    the layer is called (FeatureSpace outputs or named inputs). The forward pass uses
    s_i |kernel_ij| for inputs with s_i = +-1 and kernel_ij for s_i = 0. With an activation, units
    are split into convex rho(h), concave -rho(-h) and saturated shapes in the proportions
    `activation_weights` (Runje & Shankaranarayana, ICML 2023), or all convex (`is_convex`) or
    all concave (`is_concave`). Only monotone activations are accepted."""

    _masking = "keep"

    def __init__(
        self,
        units,
        activation=None,
        monotonicity_indicator=1,
        is_convex=False,
        is_concave=False,
        activation_weights=(7, 7, 2),
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        monotonic=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        where = self._where = f"MonotonicDense '{self.name}'"
        if monotonic is not None:  # the name a FeatureSpace uses: {raw feature: +1 or -1}
            if not (isinstance(monotonicity_indicator, int) and monotonicity_indicator == 1):
                raise ValueError(f"{where}: give monotonic= or monotonicity_indicator=, not both")
            monotonicity_indicator = monotonic
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"{where}: units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.activation = activation_name(activation, where)
        if self.activation not in MONOTONE_ACTIVATIONS:
            raise ValueError(
                f"{where}: activation '{self.activation}' is not monotone; use one of {', '.join(MONOTONE_ACTIVATIONS)}"
            )
        if isinstance(monotonicity_indicator, dict):
            if not monotonicity_indicator:
                raise ValueError(f"{where}: monotonicity_indicator is an empty dict")
            ind = {}
            for k, v in monotonicity_indicator.items():
                if not isinstance(k, str):
                    raise TypeError(f"{where}: monotonicity_indicator keys must be feature names, got {k!r}")
                ind[k] = _indicator_value(v, where, f"for feature {k!r}")
            self.monotonicity_indicator = ind
        elif isinstance(monotonicity_indicator, (list, tuple, np.ndarray)):
            values = list(np.asarray(monotonicity_indicator, dtype=object).reshape(-1))
            if not values:
                raise ValueError(f"{where}: monotonicity_indicator is empty")
            self.monotonicity_indicator = [_indicator_value(v, where, f"[{i}]") for i, v in enumerate(values)]
        else:
            self.monotonicity_indicator = _indicator_value(monotonicity_indicator, where, "")
        if bool(is_convex) and bool(is_concave):
            raise ValueError(f"{where}: is_convex and is_concave cannot both be true")
        self.is_convex, self.is_concave = bool(is_convex), bool(is_concave)
        w = np.asarray(activation_weights, dtype=np.float64) if np.ndim(activation_weights) == 1 else None
        if w is None or w.size != 3 or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(
                f"{where}: activation_weights must be three non-negative numbers (convex, concave, saturated) "
                f"with a positive sum, got {activation_weights!r}"
            )
        self.activation_weights = tuple(float(v) for v in w)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializer_name(kernel_initializer, where, "kernel_initializer")
        self.bias_initializer = initializer_name(bias_initializer, where, "bias_initializer")
        self.kernel_regularizer = deserialize(kernel_regularizer, regularizers, "regularizer")
        self.bias_regularizer = deserialize(bias_regularizer, regularizers, "regularizer")
        self.kernel_constraint = deserialize(kernel_constraint, constraints, "constraint")
        self.bias_constraint = deserialize(bias_constraint, constraints, "constraint")
        self._resolved = None  # one indicator per input column, once a dict is resolved

    # -- indicators ------------------------------------------------------------------------------
    def _indicator_list(self) -> list[int]:
        if isinstance(self.monotonicity_indicator, dict):
            if self._resolved is None:
                raise ValueError(
                    f"{self._where}: a monotonicity_indicator by feature name is resolved when the layer is "
                    "called on FeatureSpace encoded features or named inputs"
                )
            return list(self._resolved)
        if isinstance(self.monotonicity_indicator, list):
            return list(self.monotonicity_indicator)
        return [self.monotonicity_indicator]

    @property
    def resolved_indicator(self) -> list[int]:
        """One indicator per input column (a dict declaration resolved to encoded columns)."""
        return self._indicator_list()

    def _call_tensors(self, tensors: list, inputs=None):
        if isinstance(self.monotonicity_indicator, dict) and len(tensors) == 1:
            self._resolved = _resolve(self, tensors[0])
        return super()._call_tensors(tensors, inputs)

    def _attach(self, graph, input_nodes: list[int]) -> int:
        self._indicator_list()  # a declaration by name must be resolved before the layer joins a graph
        return super()._attach(graph, input_nodes)

    def _make_core(self):
        # An unresolved declaration by name only reaches here for shape checks (a model file's
        # preflight); _attach refuses it in a real graph.
        unresolved = isinstance(self.monotonicity_indicator, dict) and self._resolved is None
        return _core.MonotonicDense(
            self.units,
            self.activation,
            [1] if unresolved else self._indicator_list(),
            self.is_convex,
            self.is_concave,
            list(self.activation_weights),
            self.use_bias,
            self.kernel_initializer,
            self.bias_initializer,
        )

    def split(self) -> tuple[int, int, int]:
        """Units of each activation shape: (convex, concave, saturated), as the core computes them."""
        core = self._core if self._core is not None else self._make_core_probe()
        return tuple(int(v) for v in core.split())

    def _make_core_probe(self):
        return _core.MonotonicDense(
            self.units, self.activation, [1], self.is_convex, self.is_concave, list(self.activation_weights), True,
            "zeros", "zeros",
        )  # fmt: skip

    def effective_kernel(self) -> np.ndarray:
        """The kernel the forward pass uses: s_i |kernel_ij| for monotone inputs, kernel_ij otherwise."""
        kernel = self.get_weights()[0].astype(np.float32)
        s = np.broadcast_to(np.asarray(self._indicator_list(), np.float32), (kernel.shape[0],))[:, None]
        return np.where(s == 0, kernel, s * np.abs(kernel)).astype(np.float32)

    def monotonic_direction(self):
        """+1 when the layer is increasing in every input (indicator 1 everywhere), else None."""
        return 1 if all(s == 1 for s in self._indicator_list()) else None

    def get_config(self) -> dict:
        ind = self.monotonicity_indicator
        cfg = {
            **super().get_config(),
            "units": self.units,
            "activation": self.activation,
            "monotonicity_indicator": dict(ind)
            if isinstance(ind, dict)
            else (list(ind) if isinstance(ind, list) else ind),
            "is_convex": self.is_convex,
            "is_concave": self.is_concave,
            "activation_weights": list(self.activation_weights),
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
        }
        for arg in ("kernel_regularizer", "bias_regularizer", "kernel_constraint", "bias_constraint"):
            if getattr(self, arg) is not None:
                cfg[arg] = serialize(getattr(self, arg))
        return cfg


# -- the path analysis ---------------------------------------------------------------------------
# A column's sources: {raw feature: (direction, culprit)}. direction +1/-1 when the column moves
# monotonically with the feature, 0 when it comes from the feature but stays constant while its
# value is present (a missing-value indicator), None when it does not move monotonically, and then
# `culprit` names the layer responsible ("<class> '<name>'").


def _culprit(layer) -> str:
    return f"{type(layer).__name__} '{layer.name}'"


def _width(t: KerasTensor) -> int:
    return int(np.prod(t.shape[1:]))


def _scale(col: dict, d, layer) -> dict:
    if d is None:  # any function of a value-constant column is still constant in that value
        return {f: (v, c) if v == 0 else (None, c if v is None else _culprit(layer)) for f, (v, c) in col.items()}
    return {f: (None if v is None else v * d, c) for f, (v, c) in col.items()}


def _merge(cols: list[dict], layer) -> dict:
    out: dict = {}
    for col in cols:
        for f, (v, c) in col.items():
            if f not in out or out[f][0] == 0:
                out[f] = (v, c)
            elif out[f][0] is not None and v != 0 and out[f][0] != v:
                out[f] = (None, c if v is None else _culprit(layer))
    return out


def _everything(cols: list[dict], layer, width: int) -> list[dict]:
    merged = _scale(_merge(cols, layer), None, layer)
    return [dict(merged) for _ in range(width)]


def column_sources(tensor: KerasTensor, _memo: dict | None = None) -> list[dict]:
    """Per flat column of `tensor`: {raw feature: (direction or None, culprit layer or None)}.
    Raw features are the model's named inputs (an input of width w > 1 gives "name[j]")."""
    memo = {} if _memo is None else _memo
    key = id(tensor)
    if key in memo:
        return memo[key]
    layer = tensor.layer
    width = _width(tensor)
    if isinstance(layer, InputLayer):
        names = [tensor.name] if width == 1 else [f"{tensor.name}[{j}]" for j in range(width)]
        out = [{n: (1, None)} for n in names]
    else:
        ins = [column_sources(t, memo) for t in tensor.inputs]
        out = _layer_sources(layer, tensor, ins, width)
    memo[key] = out
    return out


def _layer_sources(layer, tensor, ins: list[list[dict]], width: int) -> list[list]:
    flat = [c for cols in ins for c in cols]
    if isinstance(layer, MonotonicDense) and len(tensor.inputs[0].shape) == 2:
        ind = np.broadcast_to(np.asarray(layer.resolved_indicator), (len(ins[0]),))
        cols = []
        for s, col in zip(ind, ins[0]):
            cols.append(_scale(col, None if s == 0 else int(s), layer))
        return [dict(_merge(cols, layer)) for _ in range(width)]
    if isinstance(layer, Concatenate) and all(len(t.shape) == 2 for t in tensor.inputs):
        return flat
    if isinstance(layer, (Add, Average, Maximum, Minimum, Subtract)) and all(len(c) == width for c in ins):
        signs = [1, -1] if isinstance(layer, Subtract) else [1] * len(ins)
        return [_merge([_scale(cols[k], s, layer) for cols, s in zip(ins, signs)], layer) for k in range(width)]
    if len(ins) != 1:
        return _everything(flat, layer, width)
    direction, mapping = None, None
    if isinstance(layer, (Dropout, GaussianNoise, GaussianDropout, Flatten)):
        direction = 1
    elif isinstance(layer, Activation):
        direction = 1 if layer.activation in MONOTONE_ACTIVATIONS else None
    elif hasattr(layer, "monotonic_direction"):
        direction = layer.monotonic_direction()
        if hasattr(layer, "monotonic_columns"):
            mapping = layer.monotonic_columns(len(ins[0]))
    else:
        return _everything(flat, layer, width)
    if mapping is None and width == len(ins[0]):
        mapping = list(range(width))
    if mapping is None or len(mapping) != width:
        return _everything(flat, layer, width)
    out = []
    for m in mapping:
        j, moves = m if isinstance(m, tuple) else (m, True)
        out.append(_scale(ins[0][j], direction, layer) if moves else {f: (0, None) for f in ins[0][j]})
    return out


def feature_columns(tensor: KerasTensor) -> dict[str, list[int]]:
    """{raw feature: [columns of `tensor` that depend on it]} (FeatureSpace.feature_columns)."""
    out: dict[str, list[int]] = {}
    for j, col in enumerate(column_sources(tensor)):
        for f in col:
            out.setdefault(f, []).append(j)
    return out


def _resolve(layer: MonotonicDense, tensor: KerasTensor) -> list[int]:
    """The dict declaration of `layer` as one indicator per column of its input `tensor`."""
    declared = layer.monotonicity_indicator
    cols = column_sources(tensor)
    known = sorted({f for c in cols for f in c})
    unknown = [f for f in declared if f not in known]
    if unknown:
        raise ValueError(
            f"{layer._where}: monotonicity_indicator names unknown feature(s) {unknown}; "
            f"the input '{tensor.name}' comes from the features {known}"
        )
    resolved = []
    for col in cols:
        hits = [f for f in col if f in declared and declared[f] != 0 and col[f][0] != 0]
        if not hits:
            resolved.append(0)
            continue
        if len(hits) > 1:
            raise ValueError(
                f"{layer._where}: an input column mixes the declared features {hits}; give each its own column"
            )
        f = hits[0]
        v, culprit = col[f]
        if v is None:
            raise ValueError(
                f"{layer._where}: feature {f!r} is declared monotone but reaches this layer through "
                f"{culprit}, which is not monotone (monotone preprocessing: Normalization, Imputation, "
                "Discretization(output_mode='int'), WoEEncoding)"
            )
        resolved.append(declared[f] * v)
    return resolved


def declared_monotonicity(outputs: list[KerasTensor]) -> dict[str, int]:
    """The monotone effects declared by name on the MonotonicDense layers reaching `outputs`."""
    declared: dict[str, int] = {}
    seen: set[int] = set()
    stack = list(outputs)
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        ind = getattr(t.layer, "monotonicity_indicator", None)
        if isinstance(t.layer, MonotonicDense) and isinstance(ind, dict):
            for f, v in ind.items():
                if v == 0:
                    continue
                if declared.get(f, v) != v:
                    raise ValueError(f"feature {f!r} is declared both increasing and decreasing")
                declared[f] = v
        stack.extend(t.inputs)
    return declared


def check_monotone_paths(output: KerasTensor, where: str) -> dict[str, int]:
    """Checks that every feature declared monotone reaches `output` only through monotone layers
    and in its declared direction; returns the declarations (empty when there are none)."""
    declared = declared_monotonicity([output])
    if not declared:
        return {}
    for col in column_sources(output):
        for f, want in declared.items():
            if f not in col:
                continue
            v, culprit = col[f]
            if v == 0:
                continue
            if v is None:
                raise ValueError(
                    f"{where}: feature {f!r} is declared monotone ({want:+d}) but its path to the output goes "
                    f"through {culprit}, which is not monotone; after a MonotonicDense use MonotonicDense with "
                    "indicator 1, monotone activations, Dropout, Add/Concatenate or an increasing Calibration"
                )
            if v != want:
                raise ValueError(
                    f"{where}: feature {f!r} is declared {want:+d} but the model's output moves {v:+d} with it"
                )
    return declared
