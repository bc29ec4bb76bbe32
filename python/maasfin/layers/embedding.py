"""Embedding: integer indices to trainable dense vectors, with Keras's mask_zero."""

from __future__ import annotations

import numpy as np

from maasfin import _core, constraints, regularizers
from maasfin.layers.base import Layer, Mask, deserialize, initializer_name, mask_dropped, serialize
from maasfin.layers.preprocessing.base import int_arg

__all__ = ["Embedding"]


class Embedding(Layer):
    """Turns integer indices in [0, input_dim) into dense vectors: (batch, L) -> (batch, L, output_dim).
    Weights: embeddings (input_dim, output_dim), trainable; initialised U(-0.05, 0.05) ("uniform")
    as Keras. mask_zero=True attaches the mask `indices != 0` to the output (Keras semantics)."""

    def __init__(
        self,
        input_dim,
        output_dim,
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        embeddings_constraint=None,
        mask_zero=False,
        weights=None,
        lora_rank=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        where = f"Embedding '{self.name}'"
        if weights is not None or lora_rank is not None:
            raise ValueError(f"{where}: weights and lora_rank are not supported")
        self.input_dim = int_arg(input_dim, where, "input_dim", 1)
        self.output_dim = int_arg(output_dim, where, "output_dim", 1)
        init = "random_uniform" if embeddings_initializer in ("uniform", "RandomUniform") else embeddings_initializer
        self.embeddings_initializer = initializer_name(init, where, "embeddings_initializer")
        self.embeddings_regularizer = deserialize(embeddings_regularizer, regularizers, "regularizer")
        self.embeddings_constraint = deserialize(embeddings_constraint, constraints, "constraint")
        self.mask_zero = bool(mask_zero)

    @property
    def index_limit(self) -> int:
        """Inputs of this layer must be integer indices in [0, index_limit)."""
        return self.input_dim

    def _mask_flow(self, masks, sources):
        # Keras: with mask_zero the output's mask is `indices != 0` (index 0 is then reserved).
        self._mask_in = None
        if any(m is not None for m in masks):
            mask_dropped(self)
        if not self.mask_zero:
            return None
        return Mask(sources[0], 0.0)

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
        cfg = {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": init,
            "mask_zero": self.mask_zero,
        }
        for arg in ("embeddings_regularizer", "embeddings_constraint"):
            if getattr(self, arg) is not None:
                cfg[arg] = serialize(getattr(self, arg))
        return cfg
