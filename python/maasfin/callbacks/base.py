"""The callback contract (Callback, CallbackList) and the callbacks every fit has: History, ProgbarLogger."""

from __future__ import annotations

import sys
import time

# The batch hooks of each phase (Keras's on_batch_* are aliases of the training ones).
_BATCH_HOOKS = {
    "train": ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end"),
    "test": ("on_test_batch_begin", "on_test_batch_end"),
    "predict": ("on_predict_batch_begin", "on_predict_batch_end"),
}


class Callback:
    """Base class of callbacks: `fit`, `evaluate` and `predict` call its hooks, as Keras 3's do."""

    def __init__(self):
        self.model = None
        self.params: dict = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs)

    def on_batch_begin(self, batch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass

    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_predict_begin(self, logs=None):
        pass

    def on_predict_end(self, logs=None):
        pass

    def on_predict_batch_begin(self, batch, logs=None):
        pass

    def on_predict_batch_end(self, batch, logs=None):
        pass

    def _wants_batches(self, phase: str = "train") -> bool:
        """Whether this callback overrides a batch hook of `phase` ("train", "test" or "predict"):
        the loop then runs one batch per core call so that the hooks see every batch."""
        return any(getattr(type(self), h) is not getattr(Callback, h) for h in _BATCH_HOOKS[phase])


class CallbackList:
    """Calls a hook on every callback in order; `fit`, `evaluate` and `predict` drive one."""

    def __init__(self, callbacks, model, params: dict):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be maasfin.callbacks.Callback instances, got {cb!r}")
            cb.set_model(model)
            cb.set_params(params)

    @property
    def wants_batches(self) -> bool:
        return self.wants("train")

    def wants(self, phase: str) -> bool:
        """Whether any callback overrides a batch hook of `phase`."""
        return any(cb._wants_batches(phase) for cb in self.callbacks)

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
            self._bar = tqdm(
                total=steps,
                unit="step",
                file=sys.stdout,
                leave=True,
                dynamic_ncols=True,
                bar_format="{n_fmt}/{total_fmt} {bar} {elapsed}<{remaining} {rate_fmt}{postfix}",
            )
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
            print(
                f"{steps}/{steps} - {elapsed:.0f}s - {1e3 * elapsed / steps:.0f}ms/step - {_fmt_logs(logs or {})}",
                file=sys.stdout,
                flush=True,
            )

    # Keras names the hook on_batch_end too; the progress path above replaces per-batch calls.
    def _wants_batches(self, phase: str = "train") -> bool:
        return False
