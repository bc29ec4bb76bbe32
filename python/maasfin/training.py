"""compile / fit / evaluate / predict with Keras 3's signatures and semantics.

The epoch loop and callbacks run here; each epoch's batches run in the C++ Trainer with the GIL
released. Data is validated once, at the boundary (data.py), before any loop starts.
"""
from __future__ import annotations

import math

import numpy as np

from maasfin import _core, callbacks as callbacks_module, data, losses, metrics as metrics_module, optimizers
from maasfin.signature import Signature, TensorSpec
from maasfin.utils import draw_seed

_VERBOSE = (0, 1, 2, "auto")


def _verbose(v, default: int) -> int:
    if v not in _VERBOSE or isinstance(v, bool):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {v!r}")
    return default if v == "auto" else int(v)


class TrainingMixin:
    def _init_training(self) -> None:
        self.optimizer = None
        self.loss = None
        self.compiled = False
        self._metric_ids: list = []
        self._compiled_metrics: list = []
        self._trainer = None
        self._trainer_key = None

    # -- compile -----------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto", auto_scale_loss=True):
        if loss is None:
            raise ValueError(f"compile: a loss is required; valid names include {', '.join(sorted(losses._BY_NAME))}")
        if loss_weights is not None:
            raise ValueError("compile: loss_weights is only meaningful for multi-output models, which are not supported")
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
            raise ValueError(f"model '{self.name}': its output carries a mask (from Masking or Embedding(mask_zero="
                             "True) through layers that keep it), which Keras would apply to the loss; masked "
                             "losses are not supported: end with a layer that consumes the mask (an RNN without "
                             "return_sequences, GlobalAveragePooling1D) or pass per-step sample_weight instead")
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
            self._trainer = _core.Trainer(self._graph, self.loss._spec, core_opt,
                                          [(m.name, m._core, w) for m, w in resolved], self._trainable_ranges())
            self._configure_trainer(self._trainer)
            self._compiled_metrics = [m for m, _ in resolved]
            self._trainer_key = key
        elif key != self._trainer_key:
            raise ValueError(f"model '{self.name}': targets of shape {data.shape_str(y_shape)} differ from those the "
                             f"compiled metrics were resolved for; recompile the model for this data")
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
        ranges = [(off, off + int(np.prod(shape))) for layer, m in masks
                  for (_, shape, off), t in zip(layer._param_specs(), m) if t]
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
    def _input_specs(self) -> list[tuple]:
        """Per model input: (name, per-sample shape or None, dtype, string encoder layer or None,
        accepts missing values). Inputs that feed only Imputation/lookups may hold NaN."""
        cached = getattr(self, "_input_specs_cache", None)
        if cached is not None:
            return cached
        specs = []
        if getattr(self, "_inputs", None):
            for t in self._inputs:
                consumers = [u.layer for u in self._order if any(v is t for v in u.inputs)]
                encoder = consumers[0] if t.dtype == "string" else None
                missing = bool(consumers) and all(getattr(c, "_accepts_missing", False) for c in consumers)
                specs.append((t.name, tuple(t.shape[1:]), t.layer.dtype, encoder, missing))
        else:  # Sequential: its first layer decides
            layers = self.layers
            first = layers[0] if layers else None
            shape = self._input_shapes[0] if self.built else None
            name = self._input_layer.name if getattr(self, "_input_layer", None) is not None else "input_layer"
            specs.append((name, shape, "float32", None, bool(getattr(first, "_accepts_missing", False))))
        if self.built:
            self._input_specs_cache = specs
        return specs

    def _named_columns(self, x, what: str):
        """(columns by input name, extra names, kind) when x gives the inputs by name, else None."""
        named = bool(getattr(self, "_inputs", None))
        if isinstance(x, dict):
            if not named:
                raise TypeError(f"{what} is a dict, but model '{self.name}' has no named inputs; pass an array "
                                "or a DataFrame")
            return dict(x), [], "dict"
        if isinstance(x, list) and x and all(isinstance(r, dict) for r in x):
            if not named:
                raise TypeError(f"{what} is a list of records, but model '{self.name}' has no named inputs; use a "
                                "functional model with Input(..., name=...) for each feature")
            return (*data.records_to_columns(x, [t.name for t in self._inputs], what), "records")
        if named and data.is_frame(x):
            specs = self._input_specs()
            cols = [str(c) for c in x.columns]
            by_name = len(specs) > 1 or any(s[2] == "string" for s in specs) or \
                (specs[0][1] == (1,) and specs[0][0] in cols)
            if by_name:
                if x.shape[0] == 0:
                    raise ValueError(f"{what} is an empty DataFrame (0 rows)")
                names = [s[0] for s in specs]
                return {c: x[c] for c in names if c in cols}, [c for c in cols if c not in names], "DataFrame"
        return None

    def _prepare_named(self, columns: dict, extra: list, kind: str, what: str) -> list[np.ndarray]:
        specs = self._input_specs()
        names = [s[0] for s in specs]
        if kind == "dict":
            unknown = [str(k) for k in columns if k not in names]
            if unknown:
                raise ValueError(f"{what} has unknown input name(s) {unknown}; model '{self.name}' has inputs {names}")
        missing = [n for n in names if n not in columns]
        if missing:
            raise ValueError(f"{what} is missing input(s) {missing}; model '{self.name}' needs {names}")
        if extra and not getattr(self, "_warned_extra", False):
            self._warned_extra = True
            import warnings
            warnings.warn(f"model '{self.name}': ignoring {kind} field(s) {extra} that are not model inputs "
                          f"{names} (warned once per model)", UserWarning, stacklevel=4)
        arrays = [self._convert_input(spec, columns[spec[0]], f"{what}['{spec[0]}']") for spec in specs]
        n = data.check_lengths({f"{what}['{name}']": a for name, a in zip(names, arrays)})
        if n == 0 and kind != "dict":
            raise ValueError(f"{what} has no rows")
        if not self.built:
            self._ensure_built([a.shape[1:] if a.ndim > 1 else (1,) for a in arrays])
        return arrays

    def _convert_input(self, spec, col, label: str) -> np.ndarray:
        name, shape, dtype, encoder, missing = spec
        if dtype == "string":
            arr = encoder._encode(data.string_cells(col, label), label)
        else:
            arr = data.numeric_column(col, label, missing)
        if arr.ndim == 0:
            raise ValueError(f"{label} must have a batch dimension")
        return data.match_input(arr, shape, label, self.name) if shape is not None else arr

    def _prepare_x(self, x, what: str = "x") -> list[np.ndarray]:
        named = self._named_columns(x, what)
        if named is not None:
            return self._prepare_named(*named, what)
        specs = self._input_specs()
        multi = isinstance(x, (list, tuple)) and len(getattr(self, "_inputs", [])) > 1
        parts = list(x) if multi else [x]
        if multi and len(parts) != len(specs):
            raise ValueError(f"model '{self.name}' has {len(specs)} inputs but {what} provides {len(parts)} arrays")
        arrays = []
        for i, part in enumerate(parts):
            label = what if not multi else f"{what}[{i}]"
            spec = specs[i] if i < len(specs) else None
            if spec is not None and (spec[2] == "string" or (spec[4] and not data.is_frame(part))):
                arrays.append(self._convert_input(spec, part, label))
                continue
            names = self._feature_names if (not multi and data.is_frame(part)) else None
            arr, cols = data.to_float_array(part, label, names, allow_nonfinite=bool(spec and spec[4]))
            if spec is not None and spec[4] and np.isinf(arr).any():
                raise ValueError(f"{label} contains infinity")
            if cols is not None and not multi and self._feature_names is None and data.is_frame(part):
                self._pending_names = cols
            arrays.append(arr)
        if not self.built:
            self._ensure_built([a.shape[1:] if a.ndim > 1 else (1,) for a in arrays])
        if len(arrays) != len(self._input_shapes):
            raise ValueError(f"model '{self.name}' has {len(self._input_shapes)} inputs but {what} provides {len(arrays)} arrays")
        arrays = [data.match_input(a, s, what if len(arrays) == 1 else f"{what}[{i}]", self.name)
                  for i, (a, s) in enumerate(zip(arrays, self._input_shapes))]
        return arrays

    # -- the public interface for serving and explanations --------------------------------------
    def prepare_inputs(self, x, what: str = "x") -> list[np.ndarray]:
        """The model's data boundary: `x` (an array, a DataFrame, a dict of columns or a list of
        records) validated and converted to one float32 array per input, strings encoded, names
        matched; errors name `what`, the field and both shapes. Builds the model if needed."""
        return self._prepare_x(x, what)

    def predict_arrays(self, xs: list[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Predictions for arrays returned by `prepare_inputs` (one float32 C-contiguous array per
        input), computed `batch_size` rows at a time; the core checks only their shapes."""
        self._require_built("predictions")
        return self._graph.predict([np.ascontiguousarray(x, dtype=np.float32) for x in xs],
                                   data.positive_int(batch_size, "batch_size"))

    @property
    def signature(self) -> Signature:
        """The inputs (names, per-sample shapes, dtypes, whether missing values are accepted), the
        output and the feature names of a built model; ValueError if it is not built."""
        if not self.built:
            self._maybe_build()
        if not self.built:
            raise ValueError(f"model '{self.name}' has no input shape (it was saved before being built)")
        specs = self._input_specs()
        names = [s[0] for s in specs]
        shapes = [tuple(int(d) for d in s) for s in self._input_shapes]
        if len(names) != len(shapes) or len(set(names)) != len(names):
            raise ValueError(f"model '{self.name}' has input names {names} that do not match its "
                             f"{len(shapes)} inputs")
        outs = getattr(self, "_outputs", None)
        out_name = outs[0].layer.name if outs else self.layers[-1].name
        strings = any(s[2] == "string" for s in specs)
        names_ = self.feature_names
        return Signature(inputs=tuple(TensorSpec(s[0], shape, s[2], bool(s[4])) for s, shape in zip(specs, shapes)),
                         output=TensorSpec(out_name, tuple(int(d) for d in self._graph.output_shape)),
                         feature_names=None if names_ is None else tuple(names_),
                         raw=strings or any(s[4] for s in specs), strings=strings)

    @property
    def drift_reference(self):
        """The fit-time reference of drift reports (per-feature and score bins), or None."""
        return getattr(self, "_drift_reference", None)

    def _prepare_y(self, y, n_rows: int, what: str = "y") -> np.ndarray:
        if y is None:
            raise ValueError(f"{what} is required for fit/evaluate with a supervised loss")
        arr, _ = data.to_float_array(y, what)
        out = tuple(self._graph.output_shape)
        width = int(np.prod(out))
        if self.loss.core_name == "sparse_categorical_crossentropy":
            if arr.ndim == 2 and arr.shape[1] == 1:
                arr = arr.reshape(-1)
            if arr.ndim != 1:
                raise ValueError(f"{what} has shape {arr.shape} but loss 'sparse_categorical_crossentropy' needs "
                                 f"one integer class id per row, shape (None,) or (None, 1)")
            bad = np.flatnonzero((arr != np.floor(arr)) | (arr < 0) | (arr >= width))
            if bad.size:
                raise ValueError(f"{what} row {bad[0]} holds {arr[bad[0]]!r}, not a class id in [0, {width}) "
                                 f"for the output of shape {data.shape_str((None,) + out)}")
            return np.ascontiguousarray(arr.reshape(-1, 1))
        if arr.ndim == 1 and out == (1,):
            arr = arr.reshape(-1, 1)
        if tuple(arr.shape[1:]) != out:
            hint = ""
            if self.loss.core_name == "categorical_crossentropy" and (arr.ndim == 1 or arr.shape[1:] == (1,)):
                hint = "; for integer class ids use loss='sparse_categorical_crossentropy' or maasfin.utils.to_categorical"
            raise ValueError(f"{what} has shape {arr.shape} but model '{self.name}' outputs shape "
                             f"{data.shape_str((None,) + out)} and loss '{self.loss.name}' needs targets of that shape{hint}")
        return arr

    def _prepare_weights(self, sample_weight, y: np.ndarray, class_weight, what: str = "sample_weight"):
        w = None
        if sample_weight is not None:
            w, _ = data.to_float_array(sample_weight, what)
            if w.ndim == 2 and w.shape[1] == 1:
                w = w.reshape(-1)
            if w.ndim != 1:
                raise ValueError(f"{what} must be 1-D (one weight per row), got shape {w.shape}")
            if np.any(w < 0):
                raise ValueError(f"{what} row {int(np.flatnonzero(w < 0)[0])} is negative; weights must be >= 0")
        if class_weight is not None:
            if not isinstance(class_weight, dict):
                raise TypeError(f"class_weight must be a dict mapping class ids to weights, got {type(class_weight).__name__}")
            if y.shape[1] == 1:
                ids = (y[:, 0] > 0.5).astype(np.int64) if self.loss.core_name != "sparse_categorical_crossentropy" \
                    else y[:, 0].astype(np.int64)
            else:
                ids = np.argmax(y, axis=1)
            present = set(np.unique(ids).tolist())
            missing = sorted(present - {int(k) for k in class_weight})
            if missing:
                raise ValueError(f"class_weight has no entry for class(es) {missing} present in y")
            table = np.zeros(max(present | {int(k) for k in class_weight}) + 1, dtype=np.float32)
            for k, v in class_weight.items():
                if not (isinstance(v, (int, float, np.number)) and v >= 0 and math.isfinite(v)):
                    raise ValueError(f"class_weight[{k!r}] must be a finite number >= 0, got {v!r}")
                table[int(k)] = v
            cw = table[ids]
            w = cw if w is None else np.ascontiguousarray(w * cw, dtype=np.float32)
        return w

    def _prepare_xyw(self, x, y, sample_weight=None, class_weight=None, prefix=""):
        xs = self._prepare_x(x, prefix + "x")
        ys = self._prepare_y(y, xs[0].shape[0], prefix + "y")
        w = self._prepare_weights(sample_weight, ys, class_weight, prefix + "sample_weight")
        data.check_lengths({**{f"{prefix}x" if len(xs) == 1 else f"{prefix}x[{i}]": a for i, a in enumerate(xs)},
                            f"{prefix}y": ys, f"{prefix}sample_weight": w})
        return xs, ys, w

    def _adopt_feature_names(self) -> None:
        names = getattr(self, "_pending_names", None)
        if names is not None and self._feature_names is None and len(self._input_shapes) == 1 \
                and self._input_shapes[0] == (len(names),):
            self._feature_names = list(names)
        self._pending_names = None

    @property
    def feature_names(self):
        """Column names of the DataFrame the model was first trained on (its input schema), or None."""
        return None if self._feature_names is None else list(self._feature_names)

    # -- fit -----------------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None, sample_weight=None,
            initial_epoch=0, steps_per_epoch=None, validation_steps=None, validation_batch_size=None,
            validation_freq=1):
        self._require_compiled("fit")
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
                raise ValueError(f"validation_split={validation_split} leaves no rows for training or validation "
                                 f"with {n} rows")
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
        from maasfin.callbacks import CallbackList, History, ProgbarLogger
        self.history = History()
        cbs = list(callbacks or [])
        if verbose:
            cbs.append(ProgbarLogger(verbose))
        cbs.append(self.history)
        cb = CallbackList(cbs, self, {"verbose": verbose, "epochs": epochs, "steps": steps})
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
                trainer.evaluate(val[0], val[1], val[2], val_bs)
                logs.update({f"val_{k}": v for k, v in self._logs(trainer.results()).items()})
            cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cb.on_train_end(logs)
        from maasfin import explain  # what explanations and drift reports compare against
        explain.record_reference(self, xs)
        return self.history

    # -- evaluate / predict ------------------------------------------------------------------
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        self._require_compiled("evaluate")
        batch_size = data.positive_int(32 if batch_size is None else batch_size, "batch_size")
        _verbose(verbose, 1)
        xs, ys, w = self._prepare_xyw(x, y, sample_weight)
        if ys.shape[0] == 0:
            raise ValueError("evaluate: x has no rows")
        trainer = self._get_trainer(ys.shape)
        trainer.evaluate(xs, ys, w, batch_size)
        results = self._logs(trainer.results())
        if return_dict:
            return results
        values = list(results.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Predictions as a float32 NumPy array. Thread-safe: any number of threads may call it."""
        g = self._graph
        if (g is not None and type(x) is np.ndarray and x.dtype == np.float32 and x.ndim == 2
                and len(self._input_shapes) == 1 and x.shape[1:] == self._input_shapes[0]
                and x.flags.c_contiguous and _core.first_nonfinite(x) < 0 and verbose in _VERBOSE):
            return g.predict([x], 32 if batch_size is None else data.positive_int(batch_size, "batch_size"))
        batch_size = data.positive_int(32 if batch_size is None else batch_size, "batch_size")
        _verbose(verbose, 0)
        xs = self._prepare_x(x)
        return self._graph.predict(xs, batch_size)

    def __call__(self, x, training=False):
        if training:
            raise ValueError("calling a model with training=True is not supported; use fit()")
        return self.predict(x)
