"""Models actually learn; the credit workflow reaches its held-out ROC AUC; exact ranking metrics."""

import re
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score as sk_roc_auc_score

import maasfin as mf
from maasfin import optimizers
from maasfin.layers import Dense, Dropout
from maasfin.models import Sequential


# -- toy problems ------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_learns_xor(seed):
    mf.utils.set_random_seed(seed)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([0, 1, 1, 0], dtype=np.float32)
    model = Sequential([Dense(8, activation="tanh", input_dim=2), Dense(1, activation="sigmoid")])
    model.compile(optimizer=optimizers.Adam(learning_rate=0.05), loss="binary_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, y, epochs=300, batch_size=4, verbose=0)
    p = model.predict(x, verbose=0).ravel()
    assert np.array_equal(np.round(p), y), p
    assert np.all(np.abs(p - y) < 0.2), p
    assert hist.history["accuracy"][-1] == 1.0
    assert hist.history["loss"][-1] < 0.1 < hist.history["loss"][0]


def _blobs(rng, n_per_class, centers, scale=0.6):
    x = np.concatenate([rng.normal(loc=c, scale=scale, size=(n_per_class, len(c))) for c in centers])
    y = np.repeat(np.arange(len(centers)), n_per_class)
    order = rng.permutation(len(y))
    return x[order].astype(np.float32), y[order]


def test_three_class_blobs_softmax_sparse(rng):
    centers = [(0.0, 3.0), (-3.0, -2.0), (3.0, -2.0)]
    x, y = _blobs(rng, 100, centers)
    x_test, y_test = _blobs(rng, 100, centers)
    model = Sequential([Dense(16, activation="relu", input_dim=2), Dense(3, activation="softmax")])
    model.compile(
        optimizer=optimizers.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    hist = model.fit(x, y, epochs=30, batch_size=16, verbose=0, validation_split=0.2)
    assert hist.history["accuracy"][-1] > 0.95
    assert hist.history["val_accuracy"][-1] > 0.95
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    p = model.predict(x_test, verbose=0)
    assert acc > 0.95
    assert acc == pytest.approx(np.mean(np.argmax(p, axis=1) == y_test), abs=1e-9)
    assert loss < 0.2
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)


def test_linear_regression_recovers_coefficients(rng):
    coef = np.array([2.0, -3.0, 0.5], dtype=np.float32)
    x = rng.normal(size=(512, 3)).astype(np.float32)
    y = x @ coef + 1.0
    model = Sequential([Dense(1, input_dim=3)])
    model.compile(optimizer=optimizers.Adam(learning_rate=0.05), loss="mse", metrics=["mae"])
    hist = model.fit(x, y, epochs=60, batch_size=32, verbose=0)
    assert hist.history["loss"][0] > 1.0
    assert hist.history["loss"][-1] < 1e-3
    kernel, bias = model.get_weights()
    np.testing.assert_allclose(kernel.ravel(), coef, atol=0.02)
    np.testing.assert_allclose(bias, [1.0], atol=0.02)
    x_new = rng.normal(size=(50, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x_new, verbose=0).ravel(), x_new @ coef + 1.0, atol=0.05)


def test_sgd_momentum_and_rmsprop_also_learn(rng):
    x = rng.normal(size=(256, 2)).astype(np.float32)
    y = 3 * x[:, 0] - x[:, 1]
    for opt in (
        optimizers.SGD(learning_rate=0.05, momentum=0.9),
        optimizers.RMSprop(learning_rate=0.01),
        optimizers.SGD(learning_rate=0.1),
    ):
        model = Sequential([Dense(1, input_dim=2)])
        model.compile(optimizer=opt, loss="mse")
        hist = model.fit(x, y, epochs=80, batch_size=32, verbose=0)
        assert hist.history["loss"][-1] < 0.01, (opt.name, hist.history["loss"][-1])


def test_sgd_single_step_matches_hand_computed_gradient():
    """One full-batch SGD step on mse: w <- w - lr * 2/N * X^T (Xw + b - y)."""
    x = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]], dtype=np.float32)
    y = np.array([1.0, -2.0, 0.0], dtype=np.float32)
    w = np.array([[0.1], [-0.2]], dtype=np.float32)
    b = np.array([0.3], dtype=np.float32)
    model = Sequential([Dense(1, input_dim=2)])
    model.set_weights([w, b])
    model.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss="mse")
    model.fit(x, y, epochs=1, batch_size=3, shuffle=False, verbose=0)
    r = (x @ w).ravel() + b - y
    w_new = w - 0.1 * (2 / 3) * (x.T @ r).reshape(2, 1)
    b_new = b - 0.1 * (2 / 3) * r.sum()
    k, bb = model.get_weights()
    np.testing.assert_allclose(k, w_new, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bb, b_new, rtol=1e-5, atol=1e-6)


def _keras_steps(name, w, b, x, y, steps, lr, **kw):
    """NumPy transcription of Keras 3's update rules, full-batch mse on a linear model."""
    params = [w.astype(np.float64), b.astype(np.float64)]
    state = [[np.zeros_like(p) for p in params] for _ in range(2)]
    for t in range(1, steps + 1):
        r = (x @ params[0]).ravel() + params[1] - y
        grads = [(2 / len(y)) * (x.T @ r).reshape(params[0].shape), np.array([(2 / len(y)) * r.sum()])]
        for i, (p, g) in enumerate(zip(params, grads)):
            if name == "sgd":
                m = state[0][i]
                m[...] = kw["momentum"] * m - lr * g
                p += (kw["momentum"] * m - lr * g) if kw.get("nesterov") else m
            elif name == "rmsprop":
                v = state[0][i]
                v[...] = kw["rho"] * v + (1 - kw["rho"]) * g * g
                p -= lr * g / (np.sqrt(v) + 1e-7)
            else:  # adam
                m, v = state[0][i], state[1][i]
                m += (g - m) * (1 - 0.9)
                v += (g * g - v) * (1 - 0.999)
                alpha = lr * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
                p -= alpha * m / (np.sqrt(v) + 1e-7)
    return params


@pytest.mark.parametrize(
    "name, opt, kw",
    [
        ("sgd", lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9), {"momentum": 0.9}),
        (
            "sgd",
            lambda: optimizers.SGD(learning_rate=0.05, momentum=0.5, nesterov=True),
            {"momentum": 0.5, "nesterov": True},
        ),
        ("rmsprop", lambda: optimizers.RMSprop(learning_rate=0.01, rho=0.9), {"rho": 0.9}),
        ("adam", lambda: optimizers.Adam(learning_rate=0.02), {}),
    ],
    ids=["sgd-momentum", "sgd-nesterov", "rmsprop", "adam"],
)
def test_optimizer_updates_match_keras_rules(name, opt, kw):
    x = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5], [-1.0, 0.0]], dtype=np.float32)
    y = np.array([1.0, -2.0, 0.0, 0.5], dtype=np.float32)
    w = np.array([[0.1], [-0.2]], dtype=np.float32)
    b = np.array([0.3], dtype=np.float32)
    model = Sequential([Dense(1, input_dim=2)])
    model.set_weights([w, b])
    model.compile(optimizer=opt(), loss="mse")
    model.fit(x, y, epochs=5, batch_size=4, shuffle=False, verbose=0)
    assert model.optimizer.iterations == 5
    w_ref, b_ref = _keras_steps(name, w, b, x, y, 5, opt().learning_rate, **kw)
    k, bb = model.get_weights()
    np.testing.assert_allclose(k, w_ref, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(bb, b_ref, rtol=1e-4, atol=1e-6)


def test_class_and_sample_weights_change_the_fit(rng):
    """A heavily weighted class dominates: its recall rises."""
    x = rng.normal(size=(400, 2)).astype(np.float32)
    y = (x[:, 0] + 0.8 * rng.normal(size=400) > 0.8).astype(np.float32)  # imbalanced, noisy

    def recall(class_weight=None, sample_weight=None):
        mf.utils.set_random_seed(0)
        model = Sequential([Dense(1, activation="sigmoid", input_dim=2)])
        model.compile(optimizer=optimizers.Adam(learning_rate=0.05), loss="binary_crossentropy")
        model.fit(x, y, epochs=20, batch_size=32, verbose=0, class_weight=class_weight, sample_weight=sample_weight)
        p = model.predict(x, verbose=0).ravel()
        return np.mean(p[y == 1] > 0.5)

    plain = recall()
    weighted = recall(class_weight={0: 1.0, 1: 10.0})
    assert weighted > plain + 0.2
    # sample_weight with the same per-row values is the same thing
    assert recall(sample_weight=np.where(y == 1, 10.0, 1.0)) == pytest.approx(weighted, abs=0.02)


def test_dropout_is_inactive_at_predict(rng):
    mf.utils.set_random_seed(0)
    model = Sequential([Dense(32, activation="relu", input_dim=4), Dropout(0.5), Dense(1)])
    x = rng.normal(size=(20, 4)).astype(np.float32)
    w1, b1, w2, b2 = model.get_weights()
    expected = np.maximum(x @ w1 + b1, 0) @ w2 + b2  # no mask, no 1/(1-rate) scaling at inference
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))


# -- credit workflow -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def credit():
    from maasfin.demo import prepare_credit

    return prepare_credit()


def test_credit_workflow_reaches_auc(credit):
    from maasfin.demo import build_credit_model

    x_train, x_test, y_train, y_test, raw_test = credit
    assert len(x_train) + len(x_test) == 4454 and len(raw_test) == len(x_test)
    assert not np.isnan(x_train.to_numpy()).any()
    model = build_credit_model(x_train.shape[1])
    hist = model.fit(x_train, y_train, epochs=10, batch_size=32, verbose=0)
    assert len(hist.history["loss"]) == 10
    p = model.predict(x_test)
    assert p.shape == (len(x_test), 1) and p.dtype == np.float32
    auc = sk_roc_auc_score(y_test, p.ravel())
    assert auc >= 0.80
    assert mf.metrics.roc_auc_score(y_test, p) == pytest.approx(auc, abs=1e-9)
    # the DataFrame schema: reversed columns give the same scores
    np.testing.assert_array_equal(model.predict(x_test[x_test.columns[::-1]]), p)
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    assert acc == pytest.approx(np.mean((p.ravel() > 0.5) == (y_test == 1)), abs=1e-9)
    assert acc > 0.75


def _ks_reference(y, s):
    """max over thresholds t of |F_pos(t) - F_neg(t)| with empirical CDFs."""
    pos, neg = np.sort(s[y == 1]), np.sort(s[y == 0])
    t = np.unique(s)
    f_pos = np.searchsorted(pos, t, side="right") / pos.size
    f_neg = np.searchsorted(neg, t, side="right") / neg.size
    return float(np.max(np.abs(f_pos - f_neg)))


@pytest.mark.parametrize("ties", [False, True])
def test_exact_ranking_metrics_match_references(rng, ties):
    y = (rng.random(700) < 0.3).astype(np.float32)
    s = rng.normal(size=700) + 1.2 * y
    if ties:
        s = np.round(s, 1)  # many tied scores across the classes
    auc = mf.metrics.roc_auc_score(y, s)
    assert auc == pytest.approx(sk_roc_auc_score(y, s), abs=1e-9)
    ks = mf.metrics.ks_statistic(y, s)
    assert ks == pytest.approx(_ks_reference(y, s), abs=1e-12)
    assert ks == pytest.approx(stats.ks_2samp(s[y == 1], s[y == 0]).statistic, abs=1e-12)
    assert mf.metrics.gini(y, s) == pytest.approx(2 * auc - 1, abs=1e-12)
    w = rng.random(700) + 0.1
    assert mf.metrics.roc_auc_score(y, s, sample_weight=w) == pytest.approx(
        sk_roc_auc_score(y, s, sample_weight=w), abs=1e-9
    )


def test_ranking_metrics_on_credit_predictions(credit):
    from maasfin.demo import build_credit_model

    x_train, x_test, y_train, y_test, _ = credit
    model = build_credit_model(x_train.shape[1])
    model.fit(x_train, y_train, epochs=3, batch_size=32, verbose=0)
    p = model.predict(x_test).ravel().astype(np.float64)
    assert mf.metrics.roc_auc_score(y_test, p) == pytest.approx(sk_roc_auc_score(y_test, p), abs=1e-9)
    assert mf.metrics.ks_statistic(y_test, p) == pytest.approx(_ks_reference(y_test, p), abs=1e-12)


def test_ranking_metric_edge_cases():
    assert mf.metrics.roc_auc_score([0, 1], [0.2, 0.8]) == 1.0
    assert mf.metrics.roc_auc_score([0, 1], [0.8, 0.2]) == 0.0
    assert mf.metrics.roc_auc_score([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert mf.metrics.ks_statistic([0, 1], [0.2, 0.8]) == 1.0
    assert mf.metrics.ks_statistic([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.0
    with pytest.raises(ValueError, match="both classes"):
        mf.metrics.roc_auc_score([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="only 0 and 1"):
        mf.metrics.ks_statistic([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="y_score has 2"):
        mf.metrics.roc_auc_score([0, 1, 1], [0.1, 0.2])


def test_demo_command_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "maasfin", "demo", "--verbose", "0"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ROC AUC" in proc.stdout
    m = re.search(r"ROC AUC (\d\.\d+)", proc.stdout)
    assert m and float(m.group(1)) >= 0.80, proc.stdout
    assert "Total params: 1,025" in proc.stdout
