"""MultiHeadAttention (Keras 3 names, arguments, defaults and weight layout; forward and backward
run in the C++ core). Re-exported by maasfin.layers.

Call it as Keras does, on (batch, timesteps, features) tensors of the functional API:
`mha(query, value, key=None, attention_mask=None, use_causal_mask=False,
return_attention_scores=False)`. Self-attention is `mha(x, x)`; with return_attention_scores=True
the call returns [output, scores], the scores being the softmax probabilities (batch, heads,
query steps, value steps) before dropout, as Keras. Not supported (each a clear ValueError):
attention_axes other than the time axis, Keras masking (query_mask/value_mask/key_mask).
`use_causal_mask` and `return_attention_scores` are call arguments in Keras; maasfin records them
in the layer's config too, so a saved model keeps them."""

from __future__ import annotations

import numpy as np

from maasfin import _core, constraints, regularizers
from maasfin.layers.base import KerasTensor, Layer, deserialize, initializer_name, serialize
from maasfin.seeds import draw_seed

__all__ = ["MultiHeadAttention"]


def _positive_int(value, where: str, arg: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{where}: {arg} must be a positive integer, got {value!r}")
    return int(value)


class MultiHeadAttention(Layer):
    """Scaled dot-product attention with `num_heads` heads. Weights (Keras order and shapes):
    query kernel (dim_q, heads, key_dim) and bias (heads, key_dim), the same for key (value_dim
    for value), output kernel (heads, value_dim, dim_out) and bias (dim_out,). Keras's
    `output_shape` argument is kept as `output_shape_arg` (`output_shape` is the built output's
    shape, as on every layer) and in the config under its Keras name."""

    def __init__(
        self,
        num_heads,
        key_dim,
        value_dim=None,
        dropout=0.0,
        use_bias=True,
        output_shape=None,
        attention_axes=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        seed=None,
        use_causal_mask=False,
        return_attention_scores=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        where = f"MultiHeadAttention '{self.name}'"
        self.num_heads = _positive_int(num_heads, where, "num_heads")
        self.key_dim = _positive_int(key_dim, where, "key_dim")
        self.value_dim = self.key_dim if value_dim is None else _positive_int(value_dim, where, "value_dim")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float, np.floating)) or not 0 <= dropout < 1:
            raise ValueError(f"{where}: dropout must be a number in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        self.use_bias = bool(use_bias)
        if output_shape is None:
            self.output_shape_arg = None
        else:
            dims = (output_shape,) if isinstance(output_shape, (int, np.integer)) else tuple(output_shape)
            if len(dims) != 1:
                raise ValueError(
                    f"{where}: output_shape must be an integer (the last dimension of the output), got {output_shape!r}"
                )
            self.output_shape_arg = _positive_int(dims[0], where, "output_shape")
        if attention_axes not in (None, 1, (1,), [1], -2, (-2,), [-2]):
            raise ValueError(
                f"{where}: only attention over the time axis (attention_axes=None) is supported, got {attention_axes!r}"
            )
        self.attention_axes = None
        self.kernel_initializer = initializer_name(kernel_initializer, where, "kernel_initializer")
        self.bias_initializer = initializer_name(bias_initializer, where, "bias_initializer")
        self.kernel_regularizer = deserialize(kernel_regularizer, regularizers, "regularizer")
        self.bias_regularizer = deserialize(bias_regularizer, regularizers, "regularizer")
        self.kernel_constraint = deserialize(kernel_constraint, constraints, "constraint")
        self.bias_constraint = deserialize(bias_constraint, constraints, "constraint")
        self.seed = int(seed) if seed is not None else draw_seed()
        self.use_causal_mask = bool(use_causal_mask)
        # A call argument in Keras; kept on the layer (and in its config) so that a saved model
        # rebuilds the layer's two outputs.
        self.return_attention_scores = bool(return_attention_scores)

    def __call__(
        self,
        query,
        value=None,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
        use_causal_mask=None,
    ):
        where = f"MultiHeadAttention '{self.name}'"
        if self._inbound:
            raise ValueError(f"layer '{self.name}' is already called once; shared layers are not supported")
        if value is None and isinstance(query, (list, tuple)):
            # The list form a saved model's wiring uses: [query, value] + [key] + [attention_mask].
            parts = list(query)
            if len(parts) not in (2, 3, 4):
                raise ValueError(
                    f"{where}: expected [query, value], [query, value, key] or "
                    f"[query, value, key, attention_mask], got {len(parts)} tensors"
                )
            query, value = parts[0], parts[1]
            key = parts[2] if len(parts) > 2 else None
            attention_mask = parts[3] if len(parts) > 3 else None
        if value is None:
            raise ValueError(f"{where}: call it as mha(query, value) (self-attention: mha(x, x))")
        if return_attention_scores:
            self.return_attention_scores = True
        if any(m is not None for m in (query_mask, value_mask, key_mask)):
            raise ValueError(
                f"{where}: query_mask, value_mask and key_mask are not supported; pass an "
                "attention_mask of shape (batch, query_steps, value_steps)"
            )
        if training not in (None, False, True):
            raise TypeError(f"{where}: training must be None or a bool")
        if use_causal_mask is not None:
            self.use_causal_mask = bool(use_causal_mask)
        # The core reads which inputs exist from their count: a mask always comes with a key slot.
        tensors = [query, value]
        if key is not None or attention_mask is not None:
            tensors.append(value if key is None else key)
        if attention_mask is not None:
            tensors.append(attention_mask)
        for t in tensors:
            if not isinstance(t, KerasTensor):
                raise TypeError(
                    f"layer '{self.name}' was called on {type(t).__name__}; call layers on the output "
                    "of maasfin.Input(...) to build a model, and use model.predict(x) for data"
                )
        return Layer.__call__(self, tensors)

    def _mask_flow(self, masks, sources):
        # Keras would turn the query/value masks into an attention mask; maasfin asks for it explicitly.
        if any(m is not None for m in masks):
            raise ValueError(
                f"MultiHeadAttention '{self.name}': its inputs carry a mask (from Masking or "
                "Embedding(mask_zero=True)); implicit masks are not supported here: pass "
                "attention_mask of shape (batch, query_steps, value_steps) explicitly"
            )
        self._mask_in = None
        return None

    def _make_core(self):
        return _core.MultiHeadAttention(
            self.num_heads,
            self.key_dim,
            self.value_dim,
            self.output_shape_arg or 0,
            self.dropout,
            self.use_bias,
            self.use_causal_mask,
            self.seed,
            self.kernel_initializer,
            self.bias_initializer,
            self.return_attention_scores,
        )

    def _num_outputs(self) -> int:
        return 2 if self.return_attention_scores else 1

    def _output_parts(self, packed_shape, input_shapes=()):
        """[output (T, D_o), scores (heads, T, S)] inside the flat row of return_attention_scores."""
        if not self.return_attention_scores:
            return [(0, tuple(packed_shape))]
        query, value = input_shapes[0], input_shapes[1]
        T, S = int(query[0]), int(value[0])
        out = self.output_shape_arg or int(query[1])
        return [(0, (T, out)), (T * out, (self.num_heads, T, S))]

    def get_config(self) -> dict:
        cfg = {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "value_dim": self.value_dim,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "output_shape": self.output_shape_arg,
            "attention_axes": self.attention_axes,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            "seed": self.seed,
            "use_causal_mask": self.use_causal_mask,
        }
        if self.return_attention_scores:
            cfg["return_attention_scores"] = True
        for arg in ("kernel_regularizer", "bias_regularizer", "kernel_constraint", "bias_constraint"):
            if getattr(self, arg) is not None:
                cfg[arg] = serialize(getattr(self, arg))
        return cfg

    def _regularization(self) -> tuple[list, list]:
        penalties, cons = [], []
        for pname, shape, off in self._param_specs():
            kind = pname.rsplit("/", 1)[-1]  # "query/kernel" -> kernel
            reg, con = getattr(self, f"{kind}_regularizer"), getattr(self, f"{kind}_constraint")
            size = int(np.prod(shape))
            if reg is not None and (reg.l1 or reg.l2):
                penalties.append((off, off + size, reg.l1, reg.l2))
            if con is not None:
                cons.append(con._spec(off, tuple(shape)))
        return penalties, cons
