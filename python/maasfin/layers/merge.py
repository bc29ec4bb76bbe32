"""Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot, and their functions."""

from __future__ import annotations

import numpy as np

from maasfin import _core
from maasfin.layers.base import Layer

__all__ = [
    "Add",
    "Concatenate",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Dot",
    "add",
    "concatenate",
    "subtract",
    "multiply",
    "average",
    "maximum",
    "minimum",
    "dot",
]


class MergeMasks:
    """Keras's merge masks: none when any input has none (Add & co. return None; Concatenate's
    all-ones part makes its `any` true everywhere), else the OR of the inputs' masks. maasfin
    computes the cases where every input carries the same mask and refuses an OR of different ones."""

    def _mask_flow(self, masks, sources):
        self._mask_in = None
        if any(m is None for m in masks):
            return None
        if all(m == masks[0] for m in masks):
            return masks[0]
        raise ValueError(
            f"{type(self).__name__} '{self.name}': its inputs carry different masks; Keras would "
            "combine them (logical or), which maasfin does not support"
        )


class Add(MergeMasks, Layer):
    """Element-wise sum of inputs of equal shape."""

    def _make_core(self):
        return _core.Add()


class Concatenate(MergeMasks, Layer):
    """Concatenation along the last axis."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if axis != -1:
            raise ValueError(f"Concatenate '{self.name}': only axis=-1 is supported, got {axis!r}")
        self.axis = -1

    def _make_core(self):
        return _core.Concatenate()

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


class _ElementwiseMerge(MergeMasks, Layer):
    def _make_core(self):
        return _core.ElementwiseMerge(type(self).__name__)


class Subtract(_ElementwiseMerge):
    """inputs[0] - inputs[1] (exactly two inputs of equal shape)."""


class Multiply(_ElementwiseMerge):
    """Element-wise product of inputs of equal shape."""


class Average(_ElementwiseMerge):
    """Element-wise mean of inputs of equal shape."""


class Maximum(_ElementwiseMerge):
    """Element-wise maximum of inputs of equal shape (the gradient goes to the first input attaining it)."""


class Minimum(_ElementwiseMerge):
    """Element-wise minimum of inputs of equal shape (the gradient goes to the first input attaining it)."""


class Dot(Layer):
    """Dot product of two (batch, d) inputs along their last axis -> (batch, 1); with
    normalize=True the inputs are L2-normalised first (cosine similarity), as in Keras."""

    def _mask_flow(self, masks, sources):  # Keras's Dot returns no mask, without a warning
        self._mask_in = None
        return None

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        pair = tuple(axes) if isinstance(axes, (list, tuple)) else (axes, axes)
        if len(pair) != 2 or not all(
            isinstance(a, (int, np.integer)) and not isinstance(a, bool) and a in (1, -1) for a in pair
        ):
            raise ValueError(
                f"Dot '{self.name}': only axes=1 (or -1) over inputs of shape (batch, d) is "
                f"supported, got axes={axes!r}"
            )
        self.axes = axes if isinstance(axes, (int, np.integer)) else [int(a) for a in pair]
        if isinstance(self.axes, np.integer):
            self.axes = int(self.axes)
        self.normalize = bool(normalize)

    def _make_core(self):
        return _core.Dot(self.normalize)

    def get_config(self) -> dict:
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}


def add(inputs, **kwargs):
    return Add(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    return Concatenate(axis=axis, **kwargs)(inputs)


def subtract(inputs, **kwargs):
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    return Minimum(**kwargs)(inputs)


def dot(inputs, axes=-1, normalize=False, **kwargs):
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)
