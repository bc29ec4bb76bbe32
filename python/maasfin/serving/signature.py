"""What a served model accepts and returns, and the one way the server runs it.

A model's *signature* is its named inputs (per-sample shapes), its output, and its feature names
(the DataFrame columns it was trained on, if any). Every protocol decodes requests against it.

`predict_tiled` is the only call into the core the server makes. It pads the rows to a whole number
of `tile`-row tiles and has the core run one tile at a time, so:

- every core call sees the same batch shape (N = tile): oneDNN's primitive cache holds one entry
  per layer, however request sizes vary;
- a row's prediction does not depend on which other requests it was batched with. The core picks
  its product routine by row count (a matrix-vector product for one row, small-matrix products
  below ~20, blocked GEMM above, oneDNN above ~96k multiply-adds), and those routines round
  differently in the last bit; with a fixed tile a row is always computed by the same routine.
  Served predictions therefore equal `model.predict(x)` in-process (batch_size=32) for rows that
  fall in a full 32-row batch there, bit for bit, and never vary with traffic.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_TILE = 32


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]  # per sample, without the batch dimension

    @property
    def width(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorSpec, ...]
    output: TensorSpec
    feature_names: tuple[str, ...] | None
    # The model encodes its own inputs (string features, missing values): requests are records
    # converted by the model's data boundary, not JSON numbers.
    raw: bool = False
    strings: bool = False  # some input is a string feature

    def input_names(self) -> list[str]:
        return [s.name for s in self.inputs]


def signature_of(model) -> Signature:
    """The signature of a built model; ValueError if the model cannot be served."""
    from maasfin.models import Sequential

    if not model.built:
        raise ValueError(f"model '{model.name}' has no input shape (it was saved before being built)")
    shapes = [tuple(int(d) for d in s) for s in model._input_shapes]
    if isinstance(model, Sequential):
        names = [model._input_layer.name if model._input_layer is not None else "input_layer"]
        out_name = model.layers[-1].name
    else:
        names = [t.name for t in model.inputs]
        out_name = model.outputs[0].layer.name
    if len(names) != len(shapes) or len(set(names)) != len(names):
        raise ValueError(f"model '{model.name}' has input names {names} that do not match its {len(shapes)} inputs")
    out_shape = tuple(int(d) for d in model.output_shape[1:])
    feature_names = model.feature_names
    specs = model._input_specs()
    strings = any(spec[2] == "string" for spec in specs)
    return Signature(inputs=tuple(TensorSpec(n, s) for n, s in zip(names, shapes)),
                     output=TensorSpec(out_name, out_shape),
                     feature_names=None if feature_names is None else tuple(feature_names),
                     raw=strings or any(spec[4] for spec in specs), strings=strings)


def predict_tiled(model, xs: list[np.ndarray], tile: int = DEFAULT_TILE) -> np.ndarray:
    """Predictions for validated float32 C-contiguous inputs, computed in fixed `tile`-row tiles."""
    n = xs[0].shape[0]
    padded = -(-n // tile) * tile
    if padded != n:
        xs = [np.concatenate([x, np.zeros((padded - n,) + x.shape[1:], dtype=np.float32)]) for x in xs]
    # The arrays are already what the core takes (string features encoded at the request codec),
    # so they go to the graph directly, past the model's own data boundary.
    y = model._graph.predict([np.ascontiguousarray(x, dtype=np.float32) for x in xs], tile)
    return y[:n]
