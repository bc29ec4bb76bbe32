"""Model files: `.maas` archives, weights files, Keras 3 `.keras`/`.h5` files and ONNX export.

The face of the saving package. Its parts load on first use, so that layers (whose wrappers build
inner layers through `saving.objects`) can import a part without loading the rest:
file_format (constants, limits, field checks), archive (zip, safetensors, atomic writes),
objects (allowlisted classes), config (architectures), tensors and weights, maas (the `.maas`
file), backup (training state), keras/ (Keras files), onnx (ONNX export) and estimators/
(scikit-learn, XGBoost and LightGBM models as verified ONNX graphs: save_estimator, EstimatorModel).
"""

import importlib

__all__ = [
    "ModelFileError",
    "save_model",
    "load_model",
    "to_bytes",
    "from_bytes",
    "read_metadata",
    "save_estimator",
    "EstimatorModel",
    "save_weights",
    "load_weights",
    "model_from_config",
    "LIMITS",
]

_WHERE = {
    "ModelFileError": "file_format",
    "LIMITS": "file_format",
    "save_model": "maas",
    "load_model": "maas",
    "to_bytes": "maas",
    "from_bytes": "maas",
    "read_metadata": "maas",
    "save_estimator": "estimators",
    "EstimatorModel": "estimators",
    "save_weights": "weights",
    "load_weights": "weights",
    "model_from_config": "config",
}


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(f"maasfin.saving.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'maasfin.saving' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_WHERE))
