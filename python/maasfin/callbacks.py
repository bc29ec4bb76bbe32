"""Callbacks with Keras's hook names and logs dicts.

The epoch loop runs in Python and calls these hooks; batches run in C++. Batch-level hooks
(`on_train_batch_begin/end`) are honoured: when any callback overrides them, the core runs one
batch per call so the hooks see every batch, at some cost in speed.
"""
from __future__ import annotations

import csv
import math
import os
import sys
import time

import numpy as np

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger", "EarlyStopping", "LambdaCallback",
           "TerminateOnNaN", "LearningRateScheduler", "ReduceLROnPlateau", "CSVLogger"]

_BATCH_HOOKS = ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end")


class Callback:
    def __init__(self):
        self.model = None
        self.params: dict = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): self.on_batch_begin(batch, logs)
    def on_train_batch_end(self, batch, logs=None): self.on_batch_end(batch, logs)
    def on_batch_begin(self, batch, logs=None): pass
    def on_batch_end(self, batch, logs=None): pass
    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass

    def _wants_batches(self) -> bool:
        return any(getattr(type(self), h) is not getattr(Callback, h) for h in _BATCH_HOOKS)


class CallbackList:
    def __init__(self, callbacks, model, params: dict):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be maasfin.callbacks.Callback instances, got {cb!r}")
            cb.set_model(model)
            cb.set_params(params)

    @property
    def wants_batches(self) -> bool:
        return any(cb._wants_batches() for cb in self.callbacks)

    def progress_hooks(self):
        return [cb for cb in self.callbacks if hasattr(cb, "_on_progress")]

    def __getattr__(self, hook):
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args):
            for cb in self.callbacks:
                getattr(cb, hook)(*args)
        return call


def _tqdm_class():
    """tqdm's notebook widget when ipywidgets is there, else the text bar (tqdm.auto would warn)."""
    try:
        import ipywidgets  # noqa: F401
        from tqdm.auto import tqdm
    except ImportError:
        from tqdm import tqdm
    return tqdm


class History(Callback):
    """Records every epoch's logs in `.history` (a dict of lists) and `.epoch`."""

    def __init__(self):
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)


def _fmt_logs(logs: dict) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())


class ProgbarLogger(Callback):
    """verbose=1: a live bar per epoch (tqdm, rich in notebooks); verbose=2: one line per epoch."""

    def __init__(self, verbose: int = 1):
        super().__init__()
        self.verbose = verbose
        self._bar = None
        self._t0 = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()
        steps, epochs = self.params.get("steps"), self.params.get("epochs")
        if self.verbose == 1:
            tqdm = _tqdm_class()
            print(f"Epoch {epoch + 1}/{epochs}", file=sys.stdout, flush=True)
            self._bar = tqdm(total=steps, unit="step", file=sys.stdout, leave=True, dynamic_ncols=True,
                             bar_format="{n_fmt}/{total_fmt} {bar} {elapsed}<{remaining} {rate_fmt}{postfix}")
            self._done = 0

    def _on_progress(self, done: int, logs: dict):
        if self._bar is not None:
            self._bar.update(done - self._done)
            self._done = done
            self._bar.set_postfix_str(_fmt_logs(logs), refresh=True)

    def on_train_batch_end(self, batch, logs=None):
        if self._bar is not None:
            self._on_progress(batch + 1, logs or {})

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._t0
        steps = self.params.get("steps") or 1
        if self._bar is not None:
            self._bar.update(steps - self._done)
            self._bar.set_postfix_str(_fmt_logs(logs or {}), refresh=True)
            self._bar.close()
            self._bar = None
        elif self.verbose == 2:
            print(f"Epoch {epoch + 1}/{self.params.get('epochs')}", file=sys.stdout)
            print(f"{steps}/{steps} - {elapsed:.0f}s - {1e3 * elapsed / steps:.0f}ms/step - {_fmt_logs(logs or {})}",
                  file=sys.stdout, flush=True)

    # Keras names the hook on_batch_end too; the progress path above replaces per-batch calls.
    def _wants_batches(self) -> bool:
        return False


class _Monitor(Callback):
    """Shared monitor/mode logic of EarlyStopping and ReduceLROnPlateau."""

    def __init__(self, monitor: str, mode: str, min_delta: float):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{type(self).__name__}: mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor = monitor
        self.min_delta = abs(float(min_delta))
        if mode == "auto":
            name = monitor[4:] if monitor.startswith("val_") else monitor
            mode = "max" if any(k in name for k in ("acc", "auc", "ks", "gini", "precision", "recall", "f1")) else "min"
        self.mode = mode

    def _improved(self, current: float, reference: float) -> bool:
        if self.mode == "min":
            return current < reference - self.min_delta
        return current > reference + self.min_delta

    def _value(self, logs):
        value = (logs or {}).get(self.monitor)
        if value is None:
            import warnings
            warnings.warn(f"{type(self).__name__}: metric '{self.monitor}' is not in the logs; available: "
                          f"{sorted(logs or {})}", RuntimeWarning, stacklevel=3)
        return value


class EarlyStopping(_Monitor):
    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta)
        self.patience, self.verbose, self.baseline = int(patience), verbose, baseline
        self.restore_best_weights, self.start_from_epoch = bool(restore_best_weights), int(start_from_epoch)

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        current = self._value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
        self.wait += 1
        if self._improved(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improved(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class LambdaCallback(Callback):
    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        hooks = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                     on_train_end=on_train_end, on_train_batch_begin=on_train_batch_begin or kwargs.pop("on_batch_begin", None),
                     on_train_batch_end=on_train_batch_end or kwargs.pop("on_batch_end", None))
        if kwargs:
            raise TypeError(f"LambdaCallback: unexpected arguments {sorted(kwargs)}")
        self._batch = hooks["on_train_batch_begin"] is not None or hooks["on_train_batch_end"] is not None
        for name, fn in hooks.items():
            if fn is not None:
                setattr(self, name, fn)

    def _wants_batches(self) -> bool:
        return self._batch


class TerminateOnNaN(Callback):
    """Stops training when the loss becomes NaN or infinite; with raise_error, raises instead.

    Stronger than Keras: the batch whose loss or gradients are not finite is never applied, so
    the model keeps the weights of the last good batch instead of NaN weights."""

    def __init__(self, raise_error: bool = False):
        super().__init__()
        self.raise_error = raise_error

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            if self.raise_error:
                raise RuntimeError(f"NaN or infinite loss at epoch {epoch + 1}")
            print(f"Epoch {epoch + 1}: invalid loss, terminating training")
            self.model.stop_training = True


class LearningRateScheduler(Callback):
    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        lr = self.model.optimizer.learning_rate
        try:
            new = self.schedule(epoch, lr)
        except TypeError:
            new = self.schedule(epoch)
        if not isinstance(new, (float, int, np.floating, np.integer)):
            raise ValueError(f"LearningRateScheduler: the schedule must return a number, got {new!r}")
        self.model.optimizer.learning_rate = float(new)
        if self.verbose > 0:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {float(new)}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class ReduceLROnPlateau(_Monitor):
    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0):
        super().__init__(monitor, mode, min_delta)
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1, got {factor!r}")
        self.factor, self.patience, self.verbose = float(factor), int(patience), verbose
        self.cooldown, self.min_lr = int(cooldown), float(min_lr)

    def on_train_begin(self, logs=None):
        self.wait, self.cooldown_counter = 0, 0
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)
        current = self._value(logs)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current, self.best):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(self.model.optimizer.learning_rate)
                if old > self.min_lr:
                    new = max(old * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = new
                    if self.verbose > 0:
                        print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
                    self.cooldown_counter, self.wait = self.cooldown, 0


class CSVLogger(Callback):
    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.sep, self.append = os.fspath(filename), separator, append
        self._file = None
        self._writer = None

    def on_train_begin(self, logs=None):
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._writer = None
        self._header_written = exists

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._writer is None:
            self._keys = sorted(logs)
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch"] + self._keys, delimiter=self.sep)
            if not self._header_written:
                self._writer.writeheader()
        self._writer.writerow({"epoch": epoch, **{k: logs.get(k, "NA") for k in self._keys}})
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None


# -- checkpoints (saving.py writes the files, atomically) ------------------------------------------
def _check_save_freq(cls: str, save_freq):
    if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq <= 0):
        raise ValueError(f"{cls}: invalid save_freq {save_freq!r}; expected 'epoch' or a positive integer "
                         "(a number of batches)")
    return save_freq


class _BatchCounter:
    """Keras's batch counting for save_freq=<int>: batches seen since the last save, across epochs."""

    def _init_counter(self):
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = -1

    def _should_save_on_batch(self, batch: int) -> bool:
        if self.save_freq == "epoch":
            return False
        add = batch + 1 if batch <= self._last_batch_seen else batch - self._last_batch_seen
        self._batches_seen_since_last_saving += add
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False


class ModelCheckpoint(_Monitor, _BatchCounter):
    """Saves the model (`.maas`, or Keras's `.keras`/`.h5`) or its weights (`.weights.safetensors`,
    or Keras's `.weights.h5`) during training, as Keras.

    `filepath` may hold `{epoch}` (1-based), `{batch}` (with an integer save_freq) and any logs key,
    e.g. 'ckpt-{epoch:02d}-{val_loss:.2f}.maas'. With save_best_only, a file is written only when
    `monitor` improves on the best value so far (initially `initial_value_threshold`, or none).
    Every file is written atomically, so an interrupted run never leaves a torn checkpoint.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__(monitor, mode, 0)
        self.filepath = os.fspath(filepath)
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.save_freq = _check_save_freq("ModelCheckpoint", save_freq)
        if initial_value_threshold is not None and (isinstance(initial_value_threshold, bool) or
                                                    not isinstance(initial_value_threshold, (int, float))):
            raise ValueError(f"ModelCheckpoint: initial_value_threshold must be a number, got {initial_value_threshold!r}")
        self.best = None if initial_value_threshold is None else float(initial_value_threshold)
        if self.save_weights_only and not self.filepath.endswith((".weights.safetensors", ".weights.h5")):
            raise ValueError("When using `save_weights_only=True` in `ModelCheckpoint`, the filepath provided must "
                             "end in `.weights.safetensors` (maasfin weights format) or `.weights.h5` (Keras "
                             f"weights format). Received: filepath={self.filepath}")
        if not self.save_weights_only and not self.filepath.endswith((".maas", ".keras", ".h5")):
            raise ValueError("The filepath provided must end in `.maas` (maasfin model format), `.keras` (Keras "
                             f"model format) or `.h5` (legacy Keras format). Received: filepath={self.filepath}")
        self._current_epoch = 0
        self._init_counter()

    def _wants_batches(self) -> bool:
        return self.save_freq != "epoch"

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save(self._current_epoch, batch, logs or {})

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, None, logs or {})

    def _file_path(self, epoch, batch, logs) -> str:
        try:
            if batch is None or "batch" in logs:
                return self.filepath.format(epoch=epoch + 1, **logs)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except KeyError as e:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". Reason: {e}') from None

    def _save(self, epoch, batch, logs) -> None:
        path = self._file_path(epoch, batch, logs)
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                import warnings
                warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=2)
            else:
                best = "None" if self.best is None else f"{self.best:.5f}"
                if self.best is not None and not self._improved(current, self.best):
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}")
                    return
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to {current:.5f}, "
                          f"saving model to {path}")
                self.best = current
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path, overwrite=True)
        else:
            self.model.save(path, overwrite=True)


class BackupAndRestore(Callback, _BatchCounter):
    """Backs up the training state so that an interrupted `fit` resumes where it stopped, as Keras.

    At the end of every epoch (or every `save_freq` batches) one file, `backup_dir/backup.maas`,
    is written atomically with the weights, the optimizer state, the number of completed epochs
    and the states of the random generators (maasfin's seed generator and fit's shuffle
    generator). The next `fit` with this callback restores all of it in `on_train_begin` and
    continues with the epoch after the last completed one; with epoch-level backups, the final
    weights equal those of an uninterrupted run bit for bit. A mid-epoch backup (integer
    save_freq) resumes by re-running that epoch from its start with the backed-up weights, as
    Keras does. When training ends, the backup is deleted (delete_checkpoint=True).
    """

    FILENAME = "backup.maas"

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError("Empty `backup_dir` argument passed")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = _check_save_freq("BackupAndRestore", save_freq)
        self.delete_checkpoint = bool(delete_checkpoint)
        self._path = os.path.join(self.backup_dir, self.FILENAME)
        self._current_epoch = 0
        self._epoch_start = None
        self._init_counter()

    def _wants_batches(self) -> bool:
        return self.save_freq != "epoch"

    def _rng_states(self) -> dict:
        from maasfin import saving, utils
        state = {"seed_generator": saving.generator_state(utils.seed_generator())}
        fit_rng = getattr(self.model, "_fit_rng", None)
        if fit_rng is not None:
            state["shuffle_generator"] = saving.generator_state(fit_rng)
        return state

    def on_train_begin(self, logs=None):
        from maasfin import saving, utils
        if not self.model.built:
            raise ValueError("To use the BackupAndRestore callback, your model must be built before you call "
                             f"`fit()`. Model {self.model.name} is unbuilt.")
        self._init_counter()
        if not os.path.exists(self._path):
            return
        state = saving.restore_backup(self.model, self._path)
        saving.set_generator_state(utils.seed_generator(), state["seed_generator"])
        fit_rng = getattr(self.model, "_fit_rng", None)
        if fit_rng is not None and state.get("shuffle_generator") is not None:
            saving.set_generator_state(fit_rng, state["shuffle_generator"])
        self.model._initial_epoch = self._current_epoch = state["epoch"]

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch
        if self.save_freq != "epoch":
            self._epoch_start = self._rng_states()

    def on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save({"epoch": self._current_epoch, **self._epoch_start})

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch_seen = -1
        if self.save_freq == "epoch":
            self._save({"epoch": epoch + 1, **self._rng_states()})

    def _save(self, training_state: dict) -> None:
        from maasfin import saving
        os.makedirs(self.backup_dir, exist_ok=True)
        saving.save_model(self.model, self._path, include_optimizer=True, _training_state=training_state)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint:
            try:
                os.remove(self._path)
            except FileNotFoundError:
                pass
            try:
                os.rmdir(self.backup_dir)  # only if nothing else lives there
            except OSError:
                pass


__all__ += ["ModelCheckpoint", "BackupAndRestore"]
