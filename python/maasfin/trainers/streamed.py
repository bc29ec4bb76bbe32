"""fit / evaluate / predict on streams (PyDataset, generators, ParquetDataset): chunks through the C++ loop.

Each chunk (many consecutive batches of one size, prepared on the prefetch thread by the model's
data boundary) runs as one `Trainer.train` / `Trainer.evaluate` / `Graph.predict` call, so a
stream trains exactly like the same rows in memory without shuffling: the same batches, the same
per-step seeds (the core derives them from the optimizer's step count), the same weights.
"""

from __future__ import annotations

import warnings

import numpy as np

from maasfin import callbacks as callbacks_module
from maasfin import data, explain
from maasfin.seeds import draw_seed
from maasfin.streaming.feed import Prefetcher, StreamSource, batch_parts, check_batch


class StreamingMixin:
    """The streaming halves of fit, evaluate and predict (TrainingMixin routes streams here)."""

    def _check_stream_args(self, what: str, **given) -> None:
        bad = sorted(k for k, v in given.items() if v is not None and not (k == "validation_split" and v == 0))
        if bad:
            raise ValueError(
                f"{what}: {', '.join(bad)} must not be given when x is a PyDataset, generator or "
                "ParquetDataset: the dataset's batches carry the targets, weights and batch size"
            )

    def _stream_convert(self, what: str, targets: bool):
        def convert(x, y, w):
            if not targets:
                return self._prepare_x(x, what)
            if y is None:
                raise ValueError(f"{what}: batches must be (x, y) or (x, y, sample_weight) for training and evaluation")
            return self._prepare_xyw(x, y, w)

        return convert

    def _adopt_stream_names(self, source: StreamSource, adopt: bool) -> None:
        """A dataset that names its columns (ParquetDataset) must match the model's features; fit
        adopts them (after the model is built) when the model has none yet."""
        names = source.feature_names
        if names is None:
            return
        if self._feature_names is None:
            if adopt:
                self._pending_names = list(names)
                self._adopt_feature_names()
        elif list(names) != list(self._feature_names):
            raise ValueError(
                f"model '{self.name}' was trained on features {self._feature_names} but the dataset "
                f"has columns {list(names)}; give the dataset columns=<the model's features>"
            )

    def _fit_stream(
        self, x, epochs, verbose, callbacks, validation_data, initial_epoch, steps_per_epoch, validation, val_bs
    ):
        """fit on a stream; `validation` is (validation_steps, validation_freq)."""
        validation_steps, validation_freq = validation
        steps = None if steps_per_epoch is None else data.positive_int(steps_per_epoch, "steps_per_epoch")
        source = StreamSource(x, steps, "x")
        self._adopt_stream_names(source, adopt=False)
        if not self.built:  # build from batch 0 now, so weights draw their seeds before fit's (as in memory)
            first = batch_parts(source.peek(), 0, "x")
            check_batch(0, first, None, "x")
            self._stream_convert("x", True)(*first)
        self.history = callbacks_module.History()
        cbs = list(callbacks or [])
        if verbose:
            cbs.append(callbacks_module.ProgbarLogger(verbose))
        cbs.append(self.history)
        cb = callbacks_module.CallbackList(cbs, self, {"verbose": verbose, "epochs": epochs, "steps": source.steps})
        per_batch = cb.wants_batches
        hooks = cb.progress_hooks()
        self._fit_rng = np.random.default_rng(draw_seed())  # drawn as in-memory fit draws it
        self.stop_training = False
        cb.on_train_begin({})
        logs, reference_rows, batch_ref = {}, None, None
        trainer = None
        initial_epoch, self._initial_epoch = getattr(self, "_initial_epoch", None) or initial_epoch, None
        for epoch in range(int(initial_epoch), int(epochs)):
            cb.on_epoch_begin(epoch, {})
            seed = draw_seed() % (2**63)
            feed = Prefetcher(source, self._stream_convert("x", True), reference=batch_ref)
            seen = 0
            try:
                for chunk in feed:
                    xs, ys, w = chunk.converted
                    if trainer is None:
                        self._adopt_feature_names()  # DataFrame batches name the features
                        self._adopt_stream_names(source, adopt=True)
                        trainer = self._get_trainer(ys.shape)
                        trainer.set_stop_on_nonfinite(any(isinstance(c, callbacks_module.TerminateOnNaN) for c in cbs))
                    if seen == 0:
                        trainer.reset_metrics()
                    if reference_rows is None:
                        reference_rows = xs
                    if per_batch:
                        for k in range(chunk.n_batches):
                            cb.on_train_batch_begin(chunk.first + k, {})
                            trainer.train(xs, ys, w, None, chunk.batch_rows, k, k + 1, seed)
                            cb.on_train_batch_end(chunk.first + k, self._logs(trainer.results()))
                            if self.stop_training or trainer.stopped_on_nonfinite():
                                break
                    else:
                        done0 = seen

                        def progress(done, loss, done0=done0):
                            if hooks:
                                running = self._logs(trainer.results())
                                for hook in hooks:
                                    hook._on_progress(done0 + done, running)
                            return not self.stop_training

                        trainer.train(xs, ys, w, None, chunk.batch_rows, 0, chunk.n_batches, seed, progress)
                    seen += chunk.n_batches
                    if self.stop_training or trainer.stopped_on_nonfinite():
                        break
            finally:
                feed.close()
                batch_ref = feed.reference
            if seen == 0:
                if epoch == int(initial_epoch):
                    raise ValueError("fit: the dataset yielded no batches")
                warnings.warn(
                    "fit: the input ran out of data; training stops here. Give steps_per_epoch so "
                    "that a generator yields steps_per_epoch * epochs batches",
                    stacklevel=3,
                )
                break
            source.end_epoch()
            logs = self._logs(trainer.results())
            if validation_data is not None and (epoch + 1) % validation_freq == 0:
                val_logs = self._evaluate_any(trainer, validation_data, validation_steps, val_bs)
                logs.update({f"val_{k}": v for k, v in val_logs.items()})
            cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cb.on_train_end(logs)
        if reference_rows is not None:
            explain.record_reference(self, reference_rows)  # from the first chunk's rows
        return self.history

    def _evaluate_any(self, trainer, validation_data, validation_steps, val_bs: int) -> dict:
        from_stream = not isinstance(validation_data, (list, tuple))
        cb = callbacks_module.CallbackList([], self, {"verbose": 0, "epochs": 1, "steps": None})
        if from_stream:
            return self._test_stream(trainer, cb, validation_data, validation_steps, "validation_data")
        if len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be a tuple (x_val, y_val) or (x_val, y_val, val_sample_weight)")
        vx, vy, *vw = validation_data
        xs, ys, w = self._prepare_xyw(vx, vy, vw[0] if vw else None, None, prefix="val_")
        steps = -(-ys.shape[0] // val_bs)
        if validation_steps is not None:
            steps = min(steps, data.positive_int(validation_steps, "validation_steps"))
        return self._run_test(trainer, cb, xs, ys, w, val_bs, steps)

    def _test_stream(self, trainer, cb, x, steps, what: str) -> dict:
        """The loss and metrics over a stream's batches (no callbacks per batch)."""
        source = StreamSource(x, None if steps is None else data.positive_int(steps, "steps"), what)
        feed = Prefetcher(source, self._stream_convert(what, True))
        cb.on_test_begin({})
        started = False
        try:
            for chunk in feed:
                xs, ys, w = chunk.converted
                if trainer is None:
                    trainer = self._get_trainer(ys.shape)
                if not started:
                    trainer.reset_metrics()
                    started = True
                if cb.wants("test"):
                    for k in range(chunk.n_batches):
                        cb.on_test_batch_begin(chunk.first + k, {})
                        trainer.evaluate(xs, ys, w, chunk.batch_rows, k, k + 1)
                        cb.on_test_batch_end(chunk.first + k, self._logs(trainer.results()))
                else:
                    trainer.evaluate(xs, ys, w, chunk.batch_rows, 0, chunk.n_batches)
        finally:
            feed.close()
        if not started:
            raise ValueError(f"{what}: the dataset yielded no batches")
        source.end_epoch()
        logs = self._logs(trainer.results())
        cb.on_test_end(logs)
        return logs

    def _evaluate_stream(self, x, verbose, steps, callbacks, return_dict):
        cb = callbacks_module.CallbackList(
            list(callbacks or []), self, {"verbose": verbose, "epochs": 1, "steps": steps}
        )
        results = self._test_stream(self._trainer, cb, x, steps, "x")
        if return_dict:
            return results
        values = list(results.values())
        return values[0] if len(values) == 1 else values

    def _predict_stream(self, x, steps, callbacks):
        source = StreamSource(x, None if steps is None else data.positive_int(steps, "steps"), "x")
        self._adopt_stream_names(source, adopt=False)
        cb = callbacks_module.CallbackList(
            list(callbacks or []), self, {"verbose": 0, "epochs": 1, "steps": source.steps}
        )
        feed = Prefetcher(source, self._stream_convert("x", False))
        cb.on_predict_begin({})
        parts = []
        try:
            for chunk in feed:
                xs = chunk.converted
                if cb.wants("predict"):
                    for k in range(chunk.n_batches):
                        cb.on_predict_batch_begin(chunk.first + k, {})
                        lo, hi = k * chunk.batch_rows, (k + 1) * chunk.batch_rows
                        part = self._graph.predict([a[lo:hi] for a in xs], chunk.batch_rows)
                        parts.append(part)
                        cb.on_predict_batch_end(chunk.first + k, {"outputs": part})
                else:
                    parts.append(self._graph.predict(xs, chunk.batch_rows))
        finally:
            feed.close()
        source.end_epoch()
        cb.on_predict_end({})
        if not parts:
            raise ValueError("predict: the dataset yielded no batches")
        return np.concatenate(parts)
