"""A model's public signature: its named inputs, its output and its feature names."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TensorSpec", "Signature"]


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor: its per-sample shape (no batch dimension) and dtype. For inputs,
    `accepts_missing` says whether NaN/None may reach it (it feeds only Imputation or lookups)."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    accepts_missing: bool = False

    @property
    def width(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True)
class Signature:
    """What a built model accepts and returns (`model.signature`). `raw` is true when the model
    encodes its own inputs (string features, missing values): callers give it records or columns
    through `model.prepare_inputs`, not plain numbers."""

    inputs: tuple[TensorSpec, ...]
    output: TensorSpec
    feature_names: tuple[str, ...] | None
    raw: bool = False
    strings: bool = False  # some input is a string feature

    def input_names(self) -> list[str]:
        return [s.name for s in self.inputs]
