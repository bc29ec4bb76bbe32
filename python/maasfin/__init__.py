"""maasfin: Keras-style neural networks on a C++/oneDNN core, and model-as-a-service for finance.

Keras code runs after changing its imports:

    from maasfin.models import Sequential
    from maasfin.layers import Dense
"""

import os as _os

# OpenMP threads that spin while waiting collapse throughput when the cores are shared (other
# processes, several server workers): measured 20x slower LSTM steps under load. Sleeping waits
# cost a few microseconds per parallel region instead. Must be set before libgomp loads; an
# explicit OMP_WAIT_POLICY or GOMP_SPINCOUNT from the user wins.
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

from maasfin import (  # noqa: F401
    calibration,
    callbacks,
    config,
    credit,
    data,
    datasets,
    explain,
    fairness,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    reports,
    saving,
    utils,
)
from maasfin.layers import Input
from maasfin.models import Model, Sequential, from_bytes, load_model
from maasfin.version import VERSION

__version__ = VERSION

__all__ = [
    "Sequential",
    "Model",
    "Input",
    "layers",
    "models",
    "optimizers",
    "losses",
    "metrics",
    "calibration",
    "credit",
    "callbacks",
    "utils",
    "datasets",
    "config",
    "saving",
    "load_model",
    "from_bytes",
]
