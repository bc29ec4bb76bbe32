"""Callbacks with Keras's hook names and logs dicts.

The epoch loop runs in Python and calls these hooks; batches run in C++. Batch-level hooks
(`on_train_batch_begin/end`) are honoured: when any callback overrides them, the core runs one
batch per call so the hooks see every batch, at some cost in speed. `evaluate` and `predict`
call the `on_test_*` and `on_predict_*` hooks, as Keras does.
"""

from maasfin.callbacks.base import Callback, CallbackList, History, ProgbarLogger
from maasfin.callbacks.checkpoint import BackupAndRestore, ModelCheckpoint
from maasfin.callbacks.monitor import (
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ReduceLROnPlateau,
    TerminateOnNaN,
)

__all__ = [
    "Callback",
    "CallbackList",
    "History",
    "ProgbarLogger",
    "EarlyStopping",
    "LambdaCallback",
    "TerminateOnNaN",
    "LearningRateScheduler",
    "ReduceLROnPlateau",
    "CSVLogger",
    "ModelCheckpoint",
    "BackupAndRestore",
]
