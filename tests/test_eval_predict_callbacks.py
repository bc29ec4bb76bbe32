"""evaluate/predict honour `callbacks` and `steps` as Keras 3 does; fit's validation fires on_test_*."""

import numpy as np
import pytest

from maasfin.callbacks import Callback
from maasfin.layers import Dense
from maasfin.models import Sequential
from maasfin.utils import set_random_seed


class Recorder(Callback):
    """Every hook call, in order, with a copy of its logs."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def _rec(self, name, *args):
        self.calls.append((name,) + tuple(args))

    def on_test_begin(self, logs=None):
        self._rec("test_begin")

    def on_test_end(self, logs=None):
        self._rec("test_end", dict(logs or {}))

    def on_test_batch_begin(self, batch, logs=None):
        self._rec("test_batch_begin", batch)

    def on_test_batch_end(self, batch, logs=None):
        self._rec("test_batch_end", batch, dict(logs or {}))

    def on_predict_begin(self, logs=None):
        self._rec("predict_begin")

    def on_predict_end(self, logs=None):
        self._rec("predict_end")

    def on_predict_batch_begin(self, batch, logs=None):
        self._rec("predict_batch_begin", batch)

    def on_predict_batch_end(self, batch, logs=None):
        self._rec("predict_batch_end", batch, np.array(logs["outputs"]))


class EndsOnly(Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def on_test_begin(self, logs=None):
        self.calls.append("test_begin")

    def on_test_end(self, logs=None):
        self.calls.append(("test_end", dict(logs)))

    def on_predict_begin(self, logs=None):
        self.calls.append("predict_begin")

    def on_predict_end(self, logs=None):
        self.calls.append("predict_end")


@pytest.fixture
def model_and_data():
    set_random_seed(3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(103, 4)).astype(np.float32)
    y = (x[:, :1] + 0.3 * x[:, 1:2] > 0).astype(np.float32)
    model = Sequential([Dense(8, activation="relu", input_dim=4), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model, x, y


def _bce(p, y):
    p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))


def test_predict_batch_hooks_see_every_batch_and_its_outputs(model_and_data):
    model, x, _ = model_and_data
    rec = Recorder()
    out = model.predict(x, batch_size=25, callbacks=[rec], verbose=0)
    np.testing.assert_allclose(out, model.predict(x, batch_size=25), rtol=0, atol=0)
    names = [c[0] for c in rec.calls]
    assert names[0] == "predict_begin" and names[-1] == "predict_end"
    batches = [c for c in rec.calls if c[0] == "predict_batch_end"]
    assert [c[1] for c in batches] == [0, 1, 2, 3, 4]  # ceil(103 / 25)
    assert names[1:-1] == ["predict_batch_begin", "predict_batch_end"] * 5
    np.testing.assert_array_equal(np.concatenate([c[2] for c in batches]), out)
    assert [c[2].shape[0] for c in batches] == [25, 25, 25, 25, 3]


def test_predict_steps_limits_the_batches(model_and_data):
    model, x, _ = model_and_data
    out = model.predict(x, batch_size=10, steps=3)
    assert out.shape == (30, 1)
    np.testing.assert_array_equal(out, model.predict(x[:30], batch_size=10))
    assert model.predict(x, batch_size=10, steps=100).shape == (103, 1)  # more steps than data: all rows
    with pytest.raises(ValueError, match="steps"):
        model.predict(x, steps=0)


def test_evaluate_batch_hooks_and_running_logs(model_and_data):
    model, x, y = model_and_data
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    rec = Recorder()
    loss, acc = model.evaluate(x, y, batch_size=40, callbacks=[rec], verbose=0)
    names = [c[0] for c in rec.calls]
    assert names == ["test_begin"] + ["test_batch_begin", "test_batch_end"] * 3 + ["test_end"]
    ends = [c for c in rec.calls if c[0] == "test_batch_end"]
    p = model.predict(x)
    # running logs after batch k are the metrics over the first k+1 batches
    for k, (_, batch, logs) in enumerate(ends):
        rows = min(40 * (batch + 1), len(x))
        assert logs["loss"] == pytest.approx(_bce(p[:rows], y[:rows]), rel=1e-4)
        assert logs["accuracy"] == pytest.approx(float(np.mean((p[:rows] > 0.5) == y[:rows])), abs=1e-6)
    assert rec.calls[-1][1] == pytest.approx({"loss": loss, "accuracy": acc})
    assert loss == pytest.approx(_bce(p, y), rel=1e-4)


def test_evaluate_steps_evaluates_the_first_batches(model_and_data):
    model, x, y = model_and_data
    model.fit(x, y, epochs=1, verbose=0)
    part = model.evaluate(x, y, batch_size=20, steps=2, verbose=0, return_dict=True)
    first = model.evaluate(x[:40], y[:40], batch_size=20, verbose=0, return_dict=True)
    assert part == pytest.approx(first, rel=1e-6)
    ends = EndsOnly()  # only begin/end hooks: one core call, the same numbers
    whole = model.evaluate(x, y, batch_size=20, callbacks=[ends], verbose=0, return_dict=True)
    assert ends.calls[0] == "test_begin" and ends.calls[1] == ("test_end", whole)
    assert whole["loss"] == pytest.approx(_bce(model.predict(x), y), rel=1e-4)
    with pytest.raises(ValueError, match="steps"):
        model.evaluate(x, y, steps=-1)


def test_fit_validation_fires_test_hooks_and_honours_validation_steps(model_and_data):
    model, x, y = model_and_data
    rec = Recorder()
    hist = model.fit(
        x[:80],
        y[:80],
        validation_data=(x[80:], y[80:]),
        validation_batch_size=10,
        validation_steps=2,
        epochs=2,
        batch_size=16,
        verbose=0,
        callbacks=[rec],
    )
    names = [c[0] for c in rec.calls]
    assert names.count("test_begin") == 2 and names.count("test_end") == 2
    assert [c[1] for c in rec.calls if c[0] == "test_batch_end"] == [0, 1, 0, 1]
    # the last epoch's val_loss is the loss over the first 2 validation batches (20 rows)
    p = model.predict(x[80:100])
    assert hist.history["val_loss"][-1] == pytest.approx(_bce(p, y[80:100]), rel=1e-4)


def test_predict_hooks_with_begin_end_only(model_and_data):
    model, x, _ = model_and_data
    ends = EndsOnly()
    out = model.predict(x, callbacks=[ends])
    assert ends.calls == ["predict_begin", "predict_end"]
    np.testing.assert_array_equal(out, model.predict(x))
