"""Callbacks that write files during fit: ModelCheckpoint and BackupAndRestore.

The saving package writes the files atomically.
"""

from __future__ import annotations

import os

from maasfin import seeds
from maasfin.callbacks.base import Callback
from maasfin.callbacks.monitor import MonitorCallback
from maasfin.saving import backup, maas


# -- checkpoints (saving.py writes the files, atomically) ------------------------------------------
def _check_save_freq(cls: str, save_freq):
    if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq <= 0):
        raise ValueError(
            f"{cls}: invalid save_freq {save_freq!r}; expected 'epoch' or a positive integer (a number of batches)"
        )
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


class ModelCheckpoint(MonitorCallback, _BatchCounter):
    """Saves the model (`.maas`, or Keras's `.keras`/`.h5`) or its weights (`.weights.safetensors`,
    or Keras's `.weights.h5`) during training, as Keras.

    `filepath` may hold `{epoch}` (1-based), `{batch}` (with an integer save_freq) and any logs key,
    e.g. 'ckpt-{epoch:02d}-{val_loss:.2f}.maas'. With save_best_only, a file is written only when
    `monitor` improves on the best value so far (initially `initial_value_threshold`, or none).
    Every file is written atomically, so an interrupted run never leaves a torn checkpoint.
    """

    def __init__(
        self,
        filepath,
        monitor="val_loss",
        verbose=0,
        save_best_only=False,
        save_weights_only=False,
        mode="auto",
        save_freq="epoch",
        initial_value_threshold=None,
    ):
        super().__init__(monitor, mode, 0)
        self.filepath = os.fspath(filepath)
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.save_freq = _check_save_freq("ModelCheckpoint", save_freq)
        if initial_value_threshold is not None and (
            isinstance(initial_value_threshold, bool) or not isinstance(initial_value_threshold, (int, float))
        ):
            raise ValueError(
                f"ModelCheckpoint: initial_value_threshold must be a number, got {initial_value_threshold!r}"
            )
        self.best = None if initial_value_threshold is None else float(initial_value_threshold)
        if self.save_weights_only and not self.filepath.endswith((".weights.safetensors", ".weights.h5")):
            raise ValueError(
                "When using `save_weights_only=True` in `ModelCheckpoint`, the filepath provided must "
                "end in `.weights.safetensors` (maasfin weights format) or `.weights.h5` (Keras "
                f"weights format). Received: filepath={self.filepath}"
            )
        if not self.save_weights_only and not self.filepath.endswith((".maas", ".keras", ".h5")):
            raise ValueError(
                "The filepath provided must end in `.maas` (maasfin model format), `.keras` (Keras "
                f"model format) or `.h5` (legacy Keras format). Received: filepath={self.filepath}"
            )
        self._current_epoch = 0
        self._init_counter()

    def _wants_batches(self, phase: str = "train") -> bool:
        return phase == "train" and self.save_freq != "epoch"

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
                    print(
                        f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to {current:.5f}, "
                        f"saving model to {path}"
                    )
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

    def _wants_batches(self, phase: str = "train") -> bool:
        return phase == "train" and self.save_freq != "epoch"

    def _rng_states(self) -> dict:
        state = {"seed_generator": backup.generator_state(seeds.seed_generator())}
        fit_rng = getattr(self.model, "_fit_rng", None)
        if fit_rng is not None:
            state["shuffle_generator"] = backup.generator_state(fit_rng)
        return state

    def on_train_begin(self, logs=None):
        if not self.model.built:
            raise ValueError(
                "To use the BackupAndRestore callback, your model must be built before you call "
                f"`fit()`. Model {self.model.name} is unbuilt."
            )
        self._init_counter()
        if not os.path.exists(self._path):
            return
        state = backup.restore_backup(self.model, self._path)
        backup.set_generator_state(seeds.seed_generator(), state["seed_generator"])
        fit_rng = getattr(self.model, "_fit_rng", None)
        if fit_rng is not None and state.get("shuffle_generator") is not None:
            backup.set_generator_state(fit_rng, state["shuffle_generator"])
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
        os.makedirs(self.backup_dir, exist_ok=True)
        maas.save_model(self.model, self._path, include_optimizer=True, _training_state=training_state)

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
