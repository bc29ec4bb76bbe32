"""fit with Keras 3 semantics: class_weight and sample_weight in the reported loss, validation
data with weights, validation_freq, validation_batch_size, initial_epoch; the callbacks
EarlyStopping (monitor, min_delta, patience, mode, baseline, restore_best_weights,
start_from_epoch), ReduceLROnPlateau and TerminateOnNaN; and the credit-scoring workflow of the
Keras docs with an exponential-decay Adam, class weights and early stopping on val_auc.

Where a callback's behaviour depends on the monitored values, a callback placed before it writes
a chosen sequence into the (shared) epoch logs, as any Keras callback may, so the expected epoch
of stopping or of each learning-rate change follows from Keras 3's code line by line.
"""

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import maasfin as mf
from maasfin import callbacks, optimizers, regularizers
from maasfin.layers import Dense, Dropout


def _bce(y, p):
    q = np.clip(np.asarray(p, np.float64).reshape(-1), 1e-7, 1 - 1e-7)
    y = np.asarray(y, np.float64).reshape(-1)
    return -(y * np.log(q) + (1 - y) * np.log(1 - q))


def _binary(rng, n=50, d=4):
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.standard_normal(n) > 0.3).astype(np.float32)
    return x, y


def _binary_model(lr=0.0, d=4):
    m = mf.Sequential([Dense(4, activation="tanh", input_dim=d), Dense(1, activation="sigmoid")])
    m.compile(optimizer=optimizers.SGD(learning_rate=lr), loss="binary_crossentropy")
    return m


# -- weights in the loss -----------------------------------------------------------------------------
@pytest.mark.parametrize("batch_size", [50, 16])
def test_class_weight_loss_equals_weighted_bce(rng, batch_size):
    x, y = _binary(rng)
    model = _binary_model(lr=0.0)
    model.build()
    p = model.predict(x)
    hist = model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0, class_weight={0: 1.0, 1: 2.5})
    w = np.where(y == 1, 2.5, 1.0)
    assert hist.history["loss"][0] == pytest.approx(np.sum(w * _bce(y, p)) / len(y), rel=1e-5)
    assert abs(np.sum(w * _bce(y, p)) - np.sum(_bce(y, p))) / len(y) > 1e-2  # the weights matter


def test_class_weight_times_sample_weight(rng):
    x, y = _binary(rng)
    model = _binary_model(lr=0.0)
    model.build()
    p = model.predict(x)
    sw = rng.uniform(0, 2, len(y)).astype(np.float32)
    hist = model.fit(
        x, y, batch_size=20, epochs=1, shuffle=False, verbose=0, sample_weight=sw, class_weight={0: 0.5, 1: 3.0}
    )
    w = sw * np.where(y == 1, 3.0, 0.5)
    assert hist.history["loss"][0] == pytest.approx(np.sum(w * _bce(y, p)) / len(y), rel=1e-5)


def test_class_weight_trains_exactly_like_sample_weight(rng):
    x, y = _binary(rng)
    runs = []
    for kw in (dict(class_weight={0: 1.0, 1: 2.5}), dict(sample_weight=np.where(y == 1, 2.5, 1.0)), {}):
        mf.utils.set_random_seed(21)
        model = _binary_model(lr=0.3)
        hist = model.fit(x, y, batch_size=10, epochs=3, verbose=0, **kw)
        runs.append((hist.history["loss"], model.get_weights()))
    assert runs[0][0] == pytest.approx(runs[1][0], rel=1e-6)
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert max(np.max(np.abs(a - b)) for a, b in zip(runs[0][1], runs[2][1])) > 1e-3


def test_class_weight_categorical_and_sparse(rng):
    n, k = 60, 3
    x = rng.standard_normal((n, 4)).astype(np.float32)
    ids = rng.integers(0, k, n)
    cw = {0: 1.0, 1: 4.0, 2: 0.25}
    w = np.array([cw[i] for i in ids])
    for loss, y in (
        ("categorical_crossentropy", np.eye(k, dtype=np.float32)[ids]),
        ("sparse_categorical_crossentropy", ids.astype(np.float32)),
    ):
        mf.utils.set_random_seed(5)
        model = mf.Sequential([Dense(k, activation="softmax", input_dim=4)])
        model.compile(optimizer=optimizers.SGD(0.0), loss=loss)
        model.build()
        p = model.predict(x).astype(np.float64)
        per = -np.log(np.clip(p[np.arange(n), ids], 1e-7, 1))
        hist = model.fit(x, y, batch_size=n, epochs=1, shuffle=False, verbose=0, class_weight=cw)
        assert hist.history["loss"][0] == pytest.approx(np.sum(w * per) / n, rel=1e-5), loss


def test_validation_data_with_sample_weights(rng):
    x, y = _binary(rng, n=80)
    xv, yv = x[50:], y[50:]
    wv = rng.uniform(0, 3, 30).astype(np.float32)
    model = _binary_model(lr=0.0)
    model.compile(optimizer=optimizers.SGD(0.0), loss="binary_crossentropy", weighted_metrics=["accuracy"])
    hist = model.fit(x[:50], y[:50], validation_data=(xv, yv, wv), batch_size=16, epochs=2, verbose=0)
    p = model.predict(xv)
    assert hist.history["val_loss"][0] == pytest.approx(np.sum(wv * _bce(yv, p)) / 30, rel=1e-5)
    correct = (p.reshape(-1) > 0.5) == (yv == 1)
    assert hist.history["val_accuracy"][-1] == pytest.approx(np.average(correct, weights=wv), abs=1e-6)
    ev = model.evaluate(xv, yv, sample_weight=wv, verbose=0, return_dict=True)
    assert ev["loss"] == pytest.approx(hist.history["val_loss"][-1], rel=1e-6)
    # (x, y) without weights: the plain mean
    hist2 = model.fit(x[:50], y[:50], validation_data=(xv, yv), batch_size=16, epochs=1, verbose=0)
    assert hist2.history["val_loss"][0] == pytest.approx(np.mean(_bce(yv, p)), rel=1e-5)


# -- validation_freq, validation_batch_size, initial_epoch ------------------------------------------------
def test_validation_freq_validates_every_second_epoch(rng):
    x, y = _binary(rng, n=80)
    model = _binary_model(lr=0.5)
    snapshots = []
    rec = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: snapshots.append((e, dict(logs), model.get_weights())))
    hist = model.fit(
        x[:60],
        y[:60],
        validation_data=(x[60:], y[60:]),
        validation_freq=2,
        epochs=5,
        batch_size=20,
        verbose=0,
        callbacks=[rec],
    )
    assert len(hist.history["loss"]) == 5
    assert len(hist.history["val_loss"]) == 2  # epochs 2 and 4 (1-based)
    assert ["val_loss" in logs for _, logs, _ in snapshots] == [False, True, False, True, False]
    for k, epoch in enumerate((1, 3)):
        model.set_weights(snapshots[epoch][2])
        assert hist.history["val_loss"][k] == pytest.approx(model.evaluate(x[60:], y[60:], verbose=0), rel=1e-6)
    assert hist.history["val_loss"][0] != pytest.approx(hist.history["val_loss"][1], rel=1e-4)


def test_validation_batch_size_is_used(rng):
    """With an activity regularizer the loss depends on the batch partition (Keras sums the penalty
    over each batch), so val_loss reveals the validation batch size."""
    x, y = _binary(rng, n=80)
    xv, yv = x[40:], y[40:]

    def run(**kw):
        mf.utils.set_random_seed(9)
        model = mf.Sequential(
            [
                Dense(4, activation="sigmoid", input_dim=4, activity_regularizer=regularizers.L1(0.01)),
                Dense(1, activation="sigmoid"),
            ]
        )
        model.compile(optimizer=optimizers.SGD(0.0), loss="binary_crossentropy")
        hist = model.fit(x[:40], y[:40], validation_data=(xv, yv), epochs=1, verbose=0, **kw)
        return model, hist.history["val_loss"][0]

    m, v40 = run(batch_size=8, validation_batch_size=40)
    assert v40 == pytest.approx(m.evaluate(xv, yv, batch_size=40, verbose=0), rel=1e-6)
    m, v10 = run(batch_size=8, validation_batch_size=10)
    assert v10 == pytest.approx(m.evaluate(xv, yv, batch_size=10, verbose=0), rel=1e-6)
    m, v_default = run(batch_size=20)  # defaults to batch_size
    assert v_default == pytest.approx(m.evaluate(xv, yv, batch_size=20, verbose=0), rel=1e-6)
    assert len({round(v, 6) for v in (v40, v10, v_default)}) == 3


def test_initial_epoch(rng):
    x, y = _binary(rng)
    model = _binary_model(lr=0.1)
    hist = model.fit(x, y, epochs=5, initial_epoch=3, batch_size=10, verbose=0)
    assert hist.epoch == [3, 4]
    assert len(hist.history["loss"]) == 2
    assert model.optimizer.iterations == 2 * 5
    hist = model.fit(x, y, epochs=2, initial_epoch=2, verbose=0)
    assert hist.epoch == [] and hist.history == {}


# -- EarlyStopping ---------------------------------------------------------------------------------------
def _inject(key, values):
    """A callback writing values[epoch] into the logs under `key`."""
    return callbacks.LambdaCallback(on_epoch_end=lambda e, logs: logs.__setitem__(key, float(values[e])))


def _run_es(rng, values, epochs=None, lr=0.2, **es_kwargs):
    x, y = _binary(rng, n=40)
    model = _binary_model(lr=lr)
    model.build()
    weights = []
    rec = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: weights.append(model.get_weights()))
    es = callbacks.EarlyStopping(monitor="score", **es_kwargs)
    hist = model.fit(
        x, y, epochs=epochs or len(values), batch_size=40, verbose=0, callbacks=[_inject("score", values), rec, es]
    )
    return model, hist, es, weights


@pytest.mark.parametrize("patience,expected_epochs", [(0, 2), (1, 2), (2, 3), (4, 5)])
def test_early_stopping_patience_on_constant_metric(rng, patience, expected_epochs):
    _, hist, es, _ = _run_es(rng, [1.0] * 10, patience=patience)
    assert len(hist.history["loss"]) == expected_epochs
    assert es.stopped_epoch == expected_epochs - 1
    assert hist.history["score"] == [1.0] * expected_epochs


def test_early_stopping_patience_counts_epochs_without_improvement(rng):
    # min mode: best 3.0 at epoch 1, then 3 epochs without improvement -> stop at epoch 4 with patience 3
    values = [5.0, 3.0, 3.5, 4.0, 3.2, 1.0, 0.5]
    _, hist, es, _ = _run_es(rng, values, patience=3)
    assert len(hist.history["loss"]) == 5 and es.stopped_epoch == 4 and es.best == 3.0 and es.best_epoch == 1
    # the improvement at epoch 5 is seen with patience 4
    _, hist, es, _ = _run_es(rng, values, patience=4)
    assert len(hist.history["loss"]) == 7 and es.stopped_epoch == 0 and es.best == 0.5


def test_early_stopping_min_delta(rng):
    values = [1.0, 0.95, 0.91, 0.88, 0.86, 0.85]
    _, hist, _, _ = _run_es(rng, values, patience=1)
    assert len(hist.history["loss"]) == 6  # every epoch improves
    _, hist, es, _ = _run_es(rng, values, patience=1, min_delta=0.045)
    # 0.95 < 1.0 - 0.045 improves; 0.91 > 0.95 - 0.045 does not -> stop at epoch 2
    assert len(hist.history["loss"]) == 3 and es.best == 0.95
    _, hist, _, _ = _run_es(rng, values, patience=1, min_delta=-0.045)  # the sign is ignored
    assert len(hist.history["loss"]) == 3


def test_early_stopping_mode(rng):
    rising = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    _, hist, _, _ = _run_es(rng, rising, patience=1, mode="max")
    assert len(hist.history["loss"]) == 6
    _, hist, _, _ = _run_es(rng, rising, patience=1, mode="min")
    assert len(hist.history["loss"]) == 2
    assert callbacks.EarlyStopping(monitor="val_auc").mode == "max"
    assert callbacks.EarlyStopping(monitor="val_accuracy").mode == "max"
    assert callbacks.EarlyStopping(monitor="val_loss").mode == "min"
    assert callbacks.EarlyStopping(monitor="loss").mode == "min"
    with pytest.raises(ValueError):
        callbacks.EarlyStopping(mode="up")


def test_early_stopping_baseline(rng):
    # Without a baseline a constant metric stops after patience + 1 epochs ...
    _, hist, _, _ = _run_es(rng, [5.0] * 8, patience=2)
    assert len(hist.history["loss"]) == 3
    # ... with a baseline never beaten, the first epoch does not reset the wait: one epoch earlier.
    _, hist, _, _ = _run_es(rng, [5.0] * 8, patience=2, baseline=2.5)
    assert len(hist.history["loss"]) == 2
    # A baseline that is beaten behaves as no baseline.
    _, hist, _, _ = _run_es(rng, [5.0] * 8, patience=2, baseline=10.0)
    assert len(hist.history["loss"]) == 3
    # Keras 3: an improving epoch never stops training, even below the baseline.
    _, hist, _, _ = _run_es(rng, [5.0, 4.0, 3.0, 2.0, 1.9, 1.8], patience=1, baseline=1.0)
    assert len(hist.history["loss"]) == 6
    # mode max with a baseline: 0.6, 0.7 beat no baseline of 0.9, then a plateau
    _, hist, _, _ = _run_es(rng, [0.6, 0.7, 0.7, 0.7, 0.7, 0.7], patience=2, mode="max", baseline=0.9)
    assert len(hist.history["loss"]) == 3


def test_early_stopping_start_from_epoch(rng):
    worsening = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    _, hist, _, _ = _run_es(rng, worsening, patience=1)
    assert len(hist.history["loss"]) == 2
    _, hist, es, _ = _run_es(rng, worsening, patience=1, start_from_epoch=3)
    assert len(hist.history["loss"]) == 5 and es.stopped_epoch == 4 and es.best == 4.0


@pytest.mark.parametrize(
    "values,patience,best_epoch,n_epochs",
    [
        ([5.0, 3.0, 4.0, 3.5, 6.0, 7.0], 2, 1, 4),  # stops at epoch 3, best epoch 1
        ([5.0, 4.0, 2.0, 3.0, 3.5, 4.0], 10, 2, 6),  # never stops: the best weights are restored anyway
    ],
)
def test_early_stopping_restore_best_weights(rng, values, patience, best_epoch, n_epochs):
    model, hist, es, weights = _run_es(rng, values, patience=patience, restore_best_weights=True)
    assert len(hist.history["loss"]) == n_epochs
    assert es.best_epoch == best_epoch
    for got, want in zip(model.get_weights(), weights[best_epoch]):
        np.testing.assert_array_equal(got, want)
    assert max(np.max(np.abs(a - b)) for a, b in zip(weights[best_epoch], weights[-1])) > 1e-4
    # without restore_best_weights the last weights stay
    model, hist, _, weights = _run_es(rng, values, patience=patience)
    for got, want in zip(model.get_weights(), weights[-1]):
        np.testing.assert_array_equal(got, want)


def test_early_stopping_restores_weights_of_best_val_loss(rng):
    """A real run: training on labels that disagree with the validation labels makes val_loss rise."""
    x, y = _binary(rng, n=120)
    xv, yv = x[80:], 1 - y[80:]
    model = _binary_model(lr=1.0)
    weights = []
    rec = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: weights.append(model.get_weights()))
    es = callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    hist = model.fit(x[:80], y[:80], validation_data=(xv, yv), epochs=30, batch_size=16, verbose=0, callbacks=[rec, es])
    val = hist.history["val_loss"]
    best = int(np.argmin(val))
    assert len(val) == best + 3  # patience 2 after the best epoch
    assert model.evaluate(xv, yv, verbose=0) == pytest.approx(val[best], rel=1e-6)
    for got, want in zip(model.get_weights(), weights[best]):
        np.testing.assert_array_equal(got, want)


def test_early_stopping_missing_monitor_warns(rng):
    x, y = _binary(rng)
    model = _binary_model(lr=0.1)
    with pytest.warns(RuntimeWarning, match="val_auc"):
        hist = model.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.EarlyStopping(monitor="val_auc")])
    assert len(hist.history["loss"]) == 2


# -- ReduceLROnPlateau -----------------------------------------------------------------------------------
def _lr_probe_model(lr):
    """One weight, zero start, targets far above: MAE's gradient is -1 every step, so after fit the
    weight is the sum of the learning rates used (one batch per epoch)."""
    model = mf.Sequential([Dense(1, input_dim=1, use_bias=False, kernel_initializer="zeros")])
    model.compile(optimizer=optimizers.SGD(learning_rate=lr), loss="mae")
    return model


@pytest.mark.parametrize(
    "kwargs,logged,final",
    [
        (dict(factor=0.5, patience=1), [0.1, 0.1, 0.05, 0.025, 0.0125], 0.00625),
        (dict(factor=0.5, patience=2), [0.1, 0.1, 0.1, 0.05, 0.05], 0.025),
        (dict(factor=0.5, patience=1, min_lr=0.03), [0.1, 0.1, 0.05, 0.03, 0.03], 0.03),
        (dict(factor=0.5, patience=1, cooldown=2), [0.1, 0.1, 0.05, 0.05, 0.025], 0.025),
        # Keras decrements the cooldown counter before testing it: cooldown=1 does not skip an epoch
        (dict(factor=0.2, patience=1, cooldown=1), [0.1, 0.1, 0.02, 0.004, 0.0008], 0.00016),
    ],
)
def test_reduce_lr_on_plateau_schedule(kwargs, logged, final):
    model = _lr_probe_model(0.1)
    x = np.ones((4, 1), np.float32)
    y = np.full((4, 1), 1000.0, np.float32)
    cb = callbacks.ReduceLROnPlateau(monitor="score", **kwargs)
    hist = model.fit(x, y, epochs=5, batch_size=4, verbose=0, callbacks=[_inject("score", [1.0] * 5), cb])
    assert hist.history["learning_rate"] == pytest.approx(logged, rel=1e-6)
    assert model.optimizer.learning_rate == pytest.approx(final, rel=1e-6)
    # The reduced rates were the ones the optimizer used.
    assert model.layers[0].kernel[0, 0] == pytest.approx(sum(logged), rel=1e-5)


def test_reduce_lr_on_plateau_resets_on_improvement():
    model = _lr_probe_model(0.1)
    x, y = np.ones((4, 1), np.float32), np.full((4, 1), 1000.0, np.float32)
    scores = [1.0, 1.0, 0.5, 0.5, 0.5, 0.2]
    cb = callbacks.ReduceLROnPlateau(monitor="score", factor=0.5, patience=2, mode="min", min_delta=0.0)
    hist = model.fit(x, y, epochs=6, batch_size=4, verbose=0, callbacks=[_inject("score", scores), cb])
    # epoch 1: wait 1; epoch 2 improves; epoch 3 wait 1; epoch 4 wait 2 -> reduce; epoch 5 improves
    assert hist.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.1, 0.05], rel=1e-6)
    assert model.optimizer.learning_rate == pytest.approx(0.05)


def test_reduce_lr_on_plateau_on_val_loss_of_a_real_run(rng):
    """Keras's rule replayed on the observed val_loss gives the logged and final learning rates."""
    x, y = _binary(rng, n=60)
    model = _binary_model()
    model.compile(optimizer=optimizers.Adam(learning_rate=0.01), loss="binary_crossentropy")
    cb = callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.1, patience=1)
    hist = model.fit(x, y, validation_data=(x[:5], y[:5]), epochs=4, batch_size=60, verbose=0, callbacks=[cb])
    lrs = hist.history["learning_rate"]
    assert len(lrs) == 4 and lrs[0] == pytest.approx(0.01)
    val = hist.history["val_loss"]
    best, wait, lr, expected = math.inf, 0, 0.01, []
    for v in val:
        expected.append(lr)
        if v < best - 1e-4:
            best, wait = v, 0
        else:
            wait += 1
            if wait >= 1:
                lr, wait = lr * 0.1, 0
    assert lrs == pytest.approx(expected, rel=1e-6)
    assert model.optimizer.learning_rate == pytest.approx(lr, rel=1e-6)


# -- TerminateOnNaN --------------------------------------------------------------------------------------
def test_terminate_on_nan_stops_in_the_failing_epoch(rng, capsys):
    x = (100 * rng.standard_normal((64, 3))).astype(np.float32)
    y = (x.sum(axis=1) * 100).astype(np.float32)

    def run(cbs):
        mf.utils.set_random_seed(11)
        model = mf.Sequential([Dense(8, activation="relu", input_dim=3), Dense(1)])
        model.compile(optimizer=optimizers.SGD(learning_rate=10.0), loss="mse")
        return model, model.fit(x, y, epochs=8, batch_size=16, verbose=0, callbacks=cbs)

    _, control = run([])
    first_bad = next(i for i, v in enumerate(control.history["loss"]) if not np.isfinite(v))
    model, hist = run([callbacks.TerminateOnNaN()])
    assert len(hist.history["loss"]) == first_bad + 1 < 8
    assert not np.isfinite(hist.history["loss"][-1])
    assert all(np.isfinite(hist.history["loss"][:-1]))
    assert "terminating" in capsys.readouterr().out.lower()


# -- the credit workflow (Keras docs) ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def credit_run():
    from maasfin.demo import prepare_credit

    mf.utils.set_random_seed(42)
    x_train, x_test, y_train, y_test, _ = prepare_credit()
    model = mf.Sequential(
        [Dense(32, activation="relu", input_dim=x_train.shape[1]), Dropout(0.3), Dense(1, activation="sigmoid")]
    )
    model.compile(
        optimizer=optimizers.Adam(learning_rate=optimizers.schedules.ExponentialDecay(1e-3, 100, 0.96), clipnorm=1.0),
        loss="binary_crossentropy",
        metrics=["accuracy", mf.metrics.AUC(name="auc"), mf.metrics.KolmogorovSmirnov(name="ks")],
    )
    es = callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=3, restore_best_weights=True)
    hist = model.fit(
        x_train,
        y_train,
        epochs=40,
        batch_size=32,
        validation_split=0.2,
        class_weight={0: 1.0, 1: 2.5},
        callbacks=[es],
        verbose=0,
    )
    return model, hist, es, (x_train, x_test, y_train, y_test)


def test_credit_workflow_held_out_metrics(credit_run):
    model, hist, es, (x_train, x_test, y_train, y_test) = credit_run
    p = model.predict(x_test).reshape(-1).astype(np.float64)
    auc = roc_auc_score(y_test, p)
    assert auc >= 0.80
    res = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    assert set(res) == {"loss", "accuracy", "auc", "ks"}
    assert res["ks"] == pytest.approx(mf.metrics.ks_statistic(y_test, model.predict(x_test)), abs=1e-6)
    assert res["auc"] == pytest.approx(auc, abs=1e-6)
    assert res["accuracy"] == pytest.approx(np.mean((p > 0.5) == (y_test == 1)), abs=1e-6)
    assert 0.0 <= hist.history["val_ks"][-1] <= 1.0
    assert 0.0 < res["ks"] < 1.0


def test_credit_workflow_history_and_early_stopping(credit_run):
    model, hist, es, (x_train, x_test, y_train, y_test) = credit_run
    n_epochs = len(hist.history["loss"])
    for key in ("loss", "accuracy", "auc", "ks", "val_loss", "val_accuracy", "val_auc", "val_ks"):
        assert len(hist.history[key]) == n_epochs
    val_auc = hist.history["val_auc"]
    best = int(np.argmax(val_auc))
    assert es.best_epoch == best
    if n_epochs < 40:
        assert n_epochs == best + 4  # stopped after patience 3
    # restore_best_weights: the validation split (the last 20% of rows, unshuffled) scores the best val_auc
    split = int(math.ceil(len(y_train) * 0.8))
    xv, yv = x_train.iloc[split:], y_train[split:]
    res = model.evaluate(xv, yv, verbose=0, return_dict=True)
    assert res["auc"] == pytest.approx(max(val_auc), abs=1e-6)
    assert res["auc"] == pytest.approx(roc_auc_score(yv, model.predict(xv).reshape(-1)), abs=1e-6)
    # the learning rate followed the schedule: 1e-3 * 0.96 ** (iterations / 100)
    steps = math.ceil(split / 32) * n_epochs
    assert model.optimizer.iterations == steps
    assert model.optimizer.learning_rate == pytest.approx(1e-3 * 0.96 ** (steps / 100), rel=1e-6)
    # class weights were used: the training loss is the class-weighted one
    assert hist.history["loss"][0] > 0
