"""maasfin: Keras-style neural networks on a C++/oneDNN core, and model-as-a-service for finance.

Keras code runs after changing its imports:

    from maasfin.models import Sequential
    from maasfin.layers import Dense
"""
from maasfin import (callbacks, config, data, datasets, layers, losses, metrics, models, optimizers,  # noqa: F401
                     saving, utils)
from maasfin.layers import Input
from maasfin.models import Model, Sequential, from_bytes, load_model

__version__ = "0.1.0"
__all__ = ["Sequential", "Model", "Input", "layers", "models", "optimizers", "losses", "metrics", "callbacks",
           "utils", "datasets", "config", "saving", "load_model", "from_bytes"]
