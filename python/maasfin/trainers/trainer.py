"""compile / fit / evaluate / predict with Keras 3's signatures and semantics.

The epoch loop and callbacks run here; each epoch's batches run in the C++ Trainer with the GIL
released. Data is validated once, at the boundary (trainers/inputs.py and data.py), before any loop starts.
"""

from __future__ import annotations

import math

import numpy as np

from maasfin import _core, data, explain, losses, optimizers
from maasfin import callbacks as callbacks_module
from maasfin import metrics as metrics_module
from maasfin.seeds import draw_seed
from maasfin.streaming.feed import is_stream
from maasfin.trainers.inputs import InputsMixin
from maasfin.trainers.streamed import StreamingMixin

_VERBOSE = (0, 1, 2, "auto")


def _verbose(v, default: int) -> int:
    if v not in _VERBOSE or isinstance(v, bool):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {v!r}")
    return default if v == "auto" else int(v)


class TrainingMixin(StreamingMixin, InputsMixin):
    """compile, fit, evaluate and predict for Model and Sequential."""

    def _init_training(self) -> None:
        self.optimizer = None
        self.loss = None
        self.compiled = False
        self._metric_ids: list = []
        self._compiled_metrics: list = []
        self._trainer = None
        self._trainer_key = None

    # -- compile -----------------------------------------------------------------------------
    def compile(
        self,
        optimizer="rmsprop",
        loss=None,
        loss_weights=None,
        metrics=None,
        weighted_metrics=None,
        run_eagerly=False,
        steps_per_execution=1,
        jit_compile="auto",
        auto_scale_loss=True,
    ):
        if loss is None:
            raise ValueError(f"compile: a loss is required; valid names include {', '.join(sorted(losses.BY_NAME))}")
        if loss_weights is not None:
            raise ValueError(
                "compile: loss_weights is only meaningful for multi-output models, which are not supported"
            )
        # Resolve everything before touching the model, so a failed compile changes nothing.
        new_optimizer = optimizers.get(optimizer)
        new_loss = losses.get(loss)
        if new_loss.reduction in ("none", None):
            raise ValueError(f"compile: loss '{new_loss.name}' has reduction=None; training needs a reduced loss")
        plain, weighted = self._metric_list(metrics, "metrics"), self._metric_list(weighted_metrics, "weighted_metrics")
        self.optimizer, self.loss = new_optimizer, new_loss
        self._metric_ids = [(m, False) for m in plain] + [(m, True) for m in weighted]
        self._trainer = None
        self._trainer_key = None
        self.compiled = True

    @staticmethod
    def _metric_list(metrics, arg: str) -> list:
        if metrics is None:
            return []
        if isinstance(metrics, dict):
            raise ValueError(f"compile: {arg} as a dict is for multi-output models, which are not supported")
        items = list(metrics) if isinstance(metrics, (list, tuple)) else [metrics]
        for m in items:  # fail now on unknown names, not at the first fit
            if not (isinstance(m, str) and m in ("accuracy", "acc")):
                metrics_module.get(m)
        return items

    def _require_compiled(self, what: str) -> None:
        if not self.compiled:
            raise RuntimeError(f"You must call compile() before {what}() on model '{self.name}'.")

    @property
    def metrics(self) -> list:
        """The compiled metric objects (after the first fit/evaluate, when shapes are known)."""
        return list(self._compiled_metrics) if self._trainer is not None else []

    def _get_trainer(self, y_shape: tuple):
        outs = getattr(self, "_outputs", None)
        mask = outs[0]._keras_mask if outs else getattr(self, "_output_mask", None)
        if mask is not None:
            # Keras weights the loss by a mask that reaches the output; maasfin's losses have no masks.
            raise ValueError(
                f"model '{self.name}': its output carries a mask (from Masking or Embedding(mask_zero="
                "True) through layers that keep it), which Keras would apply to the loss; masked "
                "losses are not supported: end with a layer that consumes the mask (an RNN without "
                "return_sequences, GlobalAveragePooling1D) or pass per-step sample_weight instead"
            )
        out_shape = (None,) + tuple(self._graph.output_shape)
        key = tuple((m if isinstance(m, str) else id(m), w) for m, w in self._metric_ids) + (tuple(y_shape[1:]),)
        if self._trainer is None:
            resolved = [(metrics_module.resolve(m, y_shape, out_shape), w) for m, w in self._metric_ids]
            plain_names = {m.name for m, w in resolved if not w}
            for m, w in resolved:  # Keras's prefix for a weighted metric that shares a plain one's name
                if w and isinstance(m.name, str) and m.name in plain_names:
                    m.name = "weighted_" + m.name
            names = [m.name for m, _ in resolved]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"compile: metric name(s) {dup} appear more than once; give each metric its own name")
            core_opt = self.optimizer._bind()
            self._trainer = _core.Trainer(
                self._graph,
                self.loss._spec,
                core_opt,
                [(m.name, m._core, w) for m, w in resolved],
                self._trainable_ranges(),
            )
            self._configure_trainer(self._trainer)
            self._compiled_metrics = [m for m, _ in resolved]
            self._trainer_key = key
        elif key != self._trainer_key:
            raise ValueError(
                f"model '{self.name}': targets of shape {data.shape_str(y_shape)} differ from those the "
                f"compiled metrics were resolved for; recompile the model for this data"
            )
        return self._trainer

    @staticmethod
    def _logs(results) -> dict:
        return {k: (float(v[0]) if len(v) == 1 else np.asarray(v, dtype=np.float32)) for k, v in results}

    def _trainable_ranges(self) -> list[tuple[int, int]]:
        """Arena slices the optimizer updates; [] means all. Read when the trainer is created, so,
        as in Keras, a change of `layer.trainable` takes effect at the next compile()."""
        masks = [(layer, layer._trainable_mask()) for layer in self.layers]
        if all(all(m) for _, m in masks):
            return []
        ranges = [
            (off, off + int(np.prod(shape)))
            for layer, m in masks
            for (_, shape, off), t in zip(layer._param_specs(), m)
            if t
        ]
        return ranges or [(0, 0)]

    def _configure_trainer(self, trainer) -> None:
        """Per-layer training settings read at compile time: BatchNormalization's mode for
        trainable=False, regularizer penalties and weight constraints."""
        penalties, cons = [], []
        for layer in self.layers:
            layer._core.set_trainable(layer.trainable)
            p, c = layer._regularization()
            penalties += p
            cons += c
        trainer.set_regularization(penalties, cons)

    # -- data --------------------------------------------------------------------------------
    # -- fit -----------------------------------------------------------------------------------
    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        callbacks=None,
        validation_split=0.0,
        validation_data=None,
        shuffle=True,
        class_weight=None,
        sample_weight=None,
        initial_epoch=0,
        steps_per_epoch=None,
        validation_steps=None,
        validation_batch_size=None,
        validation_freq=1,
    ):
        self._require_compiled("fit")
        stream = is_stream(x)
        if stream:  # Keras: the dataset's batches carry y, the weights and the batch size
            self._check_stream_args(
                "fit",
                y=y,
                batch_size=batch_size,
                sample_weight=sample_weight,
                class_weight=class_weight,
                validation_split=validation_split,
            )
        batch_size = data.positive_int(32 if batch_size is None else batch_size, "batch_size")
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
        if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, (int, np.integer)) or initial_epoch < 0:
            raise ValueError(f"initial_epoch must be a non-negative integer, got {initial_epoch!r}")
        if not isinstance(validation_split, (int, float)) or not 0 <= validation_split < 1:
            raise ValueError(f"validation_split must be a float in [0, 1), got {validation_split!r}")
        validation_freq = data.positive_int(validation_freq, "validation_freq")
        verbose = _verbose(verbose, 1)
        if not isinstance(shuffle, bool):
            raise ValueError(f"shuffle must be True or False, got {shuffle!r}")
        if stream:
            val_bs = data.positive_int(validation_batch_size or batch_size, "validation_batch_size")
            validation = (validation_steps, validation_freq)
            return self._fit_stream(
                x, epochs, verbose, callbacks, validation_data, initial_epoch, steps_per_epoch, validation, val_bs
            )

        xs, ys, w = self._prepare_xyw(x, y, sample_weight, class_weight)
        self._adopt_feature_names()
        n = ys.shape[0]
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (list, tuple)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a tuple (x_val, y_val) or (x_val, y_val, val_sample_weight)")
            vx, vy, *vw = validation_data
            val = self._prepare_xyw(vx, vy, vw[0] if vw else None, None, prefix="val_")
        elif validation_split:
            # Keras semantics: the last rows, taken before any shuffling.
            split_at = int(math.ceil(n * (1.0 - validation_split)))
            if split_at == 0 or split_at == n:
                raise ValueError(
                    f"validation_split={validation_split} leaves no rows for training or validation with {n} rows"
                )
            val = ([a[split_at:] for a in xs], ys[split_at:], None if w is None else w[split_at:])
            xs, ys, w = [a[:split_at] for a in xs], ys[:split_at], None if w is None else w[:split_at]
            xs = [np.ascontiguousarray(a) for a in xs]
            n = split_at
        if n == 0:
            raise ValueError("fit: x has no rows")
        val_bs = data.positive_int(validation_batch_size or batch_size, "validation_batch_size")

        trainer = self._get_trainer(ys.shape)
        steps = math.ceil(n / batch_size)
        if steps_per_epoch is not None:
            steps = min(steps, data.positive_int(steps_per_epoch, "steps_per_epoch"))
        self.history = callbacks_module.History()
        cbs = list(callbacks or [])
        if verbose:
            cbs.append(callbacks_module.ProgbarLogger(verbose))
        cbs.append(self.history)
        cb = callbacks_module.CallbackList(cbs, self, {"verbose": verbose, "epochs": epochs, "steps": steps})
        per_batch = cb.wants_batches
        progress_hooks = cb.progress_hooks()
        rng = self._fit_rng = np.random.default_rng(draw_seed())  # shuffle order; BackupAndRestore saves it

        def progress(done, loss):
            # Runs on the training thread while the C++ loop waits, so reading the metrics is safe.
            if progress_hooks:
                running = self._logs(trainer.results())
                for hook in progress_hooks:
                    hook._on_progress(done, running)
            return not self.stop_training

        # With TerminateOnNaN, a non-finite batch is never applied: the last good weights stay.
        trainer.set_stop_on_nonfinite(any(isinstance(c, callbacks_module.TerminateOnNaN) for c in cbs))
        self.stop_training = False
        cb.on_train_begin({})
        logs = {}
        # BackupAndRestore sets _initial_epoch in on_train_begin to resume after its last backup (as Keras).
        initial_epoch, self._initial_epoch = getattr(self, "_initial_epoch", None) or initial_epoch, None
        for epoch in range(int(initial_epoch), int(epochs)):
            cb.on_epoch_begin(epoch, {})
            trainer.reset_metrics()
            order = rng.permutation(n).astype(np.int64) if shuffle else None
            seed = draw_seed() % (2**63)
            if per_batch:
                for k in range(steps):
                    cb.on_train_batch_begin(k, {})
                    trainer.train(xs, ys, w, order, batch_size, k, k + 1, seed)
                    cb.on_train_batch_end(k, self._logs(trainer.results()))
                    if self.stop_training or trainer.stopped_on_nonfinite():
                        break
            else:
                trainer.train(xs, ys, w, order, batch_size, 0, steps, seed, progress)
            logs = self._logs(trainer.results())
            if val is not None and (epoch + 1) % validation_freq == 0:
                val_steps = math.ceil(val[1].shape[0] / val_bs)
                if validation_steps is not None:
                    val_steps = min(val_steps, data.positive_int(validation_steps, "validation_steps"))
                val_logs = self._run_test(trainer, cb, val[0], val[1], val[2], val_bs, val_steps)
                logs.update({f"val_{k}": v for k, v in val_logs.items()})
            cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cb.on_train_end(logs)
        explain.record_reference(self, xs)  # what explanations and drift reports compare against
        return self.history

    # -- evaluate / predict ------------------------------------------------------------------
    def evaluate(
        self,
        x=None,
        y=None,
        batch_size=None,
        verbose="auto",
        sample_weight=None,
        steps=None,
        callbacks=None,
        return_dict=False,
    ):
        """The loss and metrics on (x, y), as Keras 3: `steps` limits the batches evaluated, and
        `callbacks` get on_test_begin/end and, when they override them, on_test_batch_begin/end."""
        self._require_compiled("evaluate")
        if is_stream(x):
            self._check_stream_args("evaluate", y=y, batch_size=batch_size, sample_weight=sample_weight)
            return self._evaluate_stream(x, _verbose(verbose, 1), steps, callbacks, return_dict)
        batch_size = data.positive_int(32 if batch_size is None else batch_size, "batch_size")
        verbose = _verbose(verbose, 1)
        xs, ys, w = self._prepare_xyw(x, y, sample_weight)
        if ys.shape[0] == 0:
            raise ValueError("evaluate: x has no rows")
        n_steps = math.ceil(ys.shape[0] / batch_size)
        if steps is not None:
            n_steps = min(n_steps, data.positive_int(steps, "steps"))
        trainer = self._get_trainer(ys.shape)
        cb = callbacks_module.CallbackList(
            list(callbacks or []), self, {"verbose": verbose, "epochs": 1, "steps": n_steps}
        )
        results = self._run_test(trainer, cb, xs, ys, w, batch_size, n_steps)
        if return_dict:
            return results
        values = list(results.values())
        return values[0] if len(values) == 1 else values

    def _run_test(self, trainer, cb, xs, ys, w, batch_size: int, steps: int) -> dict:
        """Batches [0, steps) through the loss and metrics, with the on_test_* hooks; the logs."""
        cb.on_test_begin({})
        trainer.reset_metrics()
        if cb.wants("test"):
            for k in range(steps):
                cb.on_test_batch_begin(k, {})
                trainer.evaluate(xs, ys, w, batch_size, k, k + 1)
                cb.on_test_batch_end(k, self._logs(trainer.results()))
        else:
            trainer.evaluate(xs, ys, w, batch_size, 0, steps)
        logs = self._logs(trainer.results())
        cb.on_test_end(logs)
        return logs

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Predictions as a float32 NumPy array, as Keras 3: `steps` limits the batches predicted,
        `batch_size` (default: a tile chosen for speed) bounds memory and never changes a row's
        output (inference is batch-invariant), and `callbacks` get on_predict_begin/end and, when they override them,
        on_predict_batch_begin/end (with the batch's outputs in logs["outputs"]). Thread-safe."""
        g = self._graph
        if (
            g is not None
            and steps is None
            and not callbacks
            and type(x) is np.ndarray
            and x.dtype == np.float32
            and x.ndim == 2
            and len(self._input_shapes) == 1
            and x.shape[1:] == self._input_shapes[0]
            and x.flags.c_contiguous
            and _core.first_nonfinite(x) < 0
            and verbose in _VERBOSE
        ):
            return g.predict([x], 0 if batch_size is None else data.positive_int(batch_size, "batch_size"))
        if is_stream(x):
            self._check_stream_args("predict", batch_size=batch_size)
            _verbose(verbose, 0)
            return self._predict_stream(x, steps, callbacks)
        # Without callbacks or steps, batch_size only bounds memory: inference is batch-invariant,
        # so the core picks the tile for speed (0); callbacks and steps count Keras's batches of 32.
        auto = batch_size is None and steps is None and not callbacks
        batch_size = data.positive_int(32 if batch_size is None else batch_size, "batch_size")
        verbose = _verbose(verbose, 0)
        xs = self._prepare_x(x)
        n_steps = math.ceil(xs[0].shape[0] / batch_size)
        if steps is not None:
            n_steps = min(n_steps, data.positive_int(steps, "steps"))
            xs = [a[: n_steps * batch_size] for a in xs]
        if not callbacks:
            return self._graph.predict(xs, 0 if auto else batch_size)
        cb = callbacks_module.CallbackList(list(callbacks), self, {"verbose": verbose, "epochs": 1, "steps": n_steps})
        cb.on_predict_begin({})
        if cb.wants("predict"):
            parts = []
            for k in range(n_steps):
                cb.on_predict_batch_begin(k, {})
                part = self._graph.predict([a[k * batch_size : (k + 1) * batch_size] for a in xs], batch_size)
                parts.append(part)
                cb.on_predict_batch_end(k, {"outputs": part})
            y = np.concatenate(parts) if parts else self._graph.predict(xs, batch_size)
        else:
            y = self._graph.predict(xs, batch_size)
        cb.on_predict_end({})
        return y

    def __call__(self, x, training=False):
        if training:
            raise ValueError("calling a model with training=True is not supported; use fit()")
        return self.predict(x)
