"""ONNX export: `model.export("credit.onnx", format="onnx")` (docs/export.md).

The model's inference graph is rebuilt from its layers' configs and weights with `onnx.helper`,
one small group of standard ONNX operators per layer (converters.py), so that any ONNX runtime
scores like `model.predict` (to float32 rounding). The `onnx` package is an optional dependency:
`pip install 'maasfin[onnx]'`.
"""

from maasfin.saving.onnx.converters import supported_layers
from maasfin.saving.onnx.export import export_onnx, to_onnx
from maasfin.saving.onnx.graph import DEFAULT_OPSET

__all__ = ["to_onnx", "export_onnx", "DEFAULT_OPSET", "supported_layers"]
