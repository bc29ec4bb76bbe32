"""The ONNX graph under construction: nodes, initializers, names, and activation functions as ONNX operators."""

from __future__ import annotations

import numpy as np

DEFAULT_OPSET = 17  # ONNX 1.12 (2022): LayerNormalization; onnxruntime >= 1.13 runs it
MIN_OPSET = 17
MAX_PROTO_BYTES = 2**31 - 1  # protobuf's limit for one message

# Constants of the C++ core (cpp/src/kernels/reference/eltwise.cpp, feature_normalization.cpp).
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_LEAKY_SLOPE = 0.2
NORMALIZATION_EPSILON = 1e-7  # Keras backend.epsilon(): Normalization divides by max(sqrt(var), eps)


def import_onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError("ONNX export needs the onnx package: pip install 'maasfin[onnx]'") from e
    return onnx, helper, numpy_helper


class OnnxGraph:
    """Nodes and initializers under construction, with unique tensor names."""

    def __init__(self, opset: int, reserved: set[str]):
        self.onnx, self.helper, self.numpy_helper = import_onnx()
        self.opset = opset
        self.nodes, self.initializers = [], []
        self._used = set(reserved)
        self._consts: dict[tuple, str] = {}

    def name(self, hint: str) -> str:
        name, k = hint, 1
        while name in self._used:
            name, k = f"{hint}_{k}", k + 1
        self._used.add(name)
        return name

    def const(self, hint: str, value, dtype=np.float32) -> str:
        a = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        key = (a.dtype.str, a.shape, a.tobytes()) if a.size <= 64 else None
        if key is not None and key in self._consts:
            return self._consts[key]
        name = self.name(hint)
        self.initializers.append(self.numpy_helper.from_array(a, name))
        if key is not None:
            self._consts[key] = name
        return name

    def axes(self, hint: str, axes) -> str:
        return self.const(hint, list(axes), np.int64)

    def op(self, op_type: str, inputs: list[str], out: str, **attrs) -> str:
        """Adds one node; `out` is the exact output name (from `name()` or a reserved layer name)."""
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def tmp(self, op_type: str, inputs: list[str], hint: str, **attrs) -> str:
        return self.op(op_type, inputs, self.name(hint), **attrs)

    def reduce(self, op_type: str, x: str, axes, out: str, keepdims: int) -> str:
        # ReduceSum takes its axes as an input from opset 13, the other reductions from opset 18.
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.op(op_type, [x, self.axes(f"{out}/axes", axes)], out, keepdims=keepdims)
        return self.op(op_type, [x], out, axes=list(axes), keepdims=keepdims)


# -- converters: (graph, layer, input names, output name, input shapes) -> output name -------------
def activation(g: OnnxGraph, act: str, x: str, out: str, where: str) -> str:
    if act == "linear":
        return g.op("Identity", [x], out)
    if act == "relu":
        return g.op("Relu", [x], out)
    if act == "sigmoid":
        return g.op("Sigmoid", [x], out)
    if act == "tanh":
        return g.op("Tanh", [x], out)
    if act == "softmax":
        return g.op("Softmax", [x], out, axis=-1)
    if act == "elu":
        return g.op("Elu", [x], out, alpha=1.0)
    if act == "selu":
        return g.op("Selu", [x], out, alpha=_SELU_ALPHA, gamma=_SELU_SCALE)
    if act == "leaky_relu":
        return g.op("LeakyRelu", [x], out, alpha=_LEAKY_SLOPE)
    if act in ("swish", "silu"):
        s = g.tmp("Sigmoid", [x], f"{out}/sigmoid")
        return g.op("Mul", [x, s], out)
    if act == "gelu":  # exact form, as the core: 0.5 * x * (1 + erf(x / sqrt(2)))
        e = g.tmp(
            "Erf",
            [g.tmp("Mul", [x, g.const(f"{out}/inv_sqrt2", 0.70710678118654752440)], f"{out}/scaled")],
            f"{out}/erf",
        )
        one_plus = g.tmp("Add", [e, g.const(f"{out}/one", 1.0)], f"{out}/one_plus_erf")
        half_x = g.tmp("Mul", [x, g.const(f"{out}/half", 0.5)], f"{out}/half_x")
        return g.op("Mul", [half_x, one_plus], out)
    raise ValueError(f"{where}: the activation '{act}' cannot be exported to ONNX")
