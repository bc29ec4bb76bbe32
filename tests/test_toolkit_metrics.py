"""Stateful metrics (update_state / result / reset_state) against scikit-learn and NumPy, weighted
and unweighted, accumulated over several batches; the same metrics inside compile/fit/evaluate.

Keras 3 conventions: Precision/Recall/BinaryAccuracy/F-beta count a prediction as positive when
it is strictly greater than the threshold; F-beta with threshold=None takes each row's argmax;
F-beta adds epsilon = 1e-7 in its divisions (hence 1e-5 tolerances against sklearn); `metrics`
in compile ignore sample weights and `weighted_metrics` use them.
"""

import numpy as np
import pytest
from sklearn import metrics as skm

import maasfin as mf
from maasfin import metrics
from maasfin.layers import Dense


def _batches(n):
    """Uneven batch boundaries covering range(n)."""
    cuts = [0, n // 5, n // 2 + 3, n]
    return [slice(a, b) for a, b in zip(cuts[:-1], cuts[1:])]


def _accumulate(metric, y, p, w=None):
    metric.reset_state()
    for sl in _batches(len(y)):
        metric.update_state(y[sl], p[sl], None if w is None else w[sl])
    return metric.result()


def _binary_data(rng, n=400, ties=True):
    y = (rng.random(n) < 0.35).astype(np.float32)
    s = np.clip(0.25 * y + 0.75 * rng.random(n), 0, 1)
    if ties:
        s = np.round(s, 1)  # many tied scores across classes
    return y, s.astype(np.float32), rng.uniform(0.0, 3.0, n).astype(np.float32)


def np_ks(y, s, w=None):
    y, s = np.asarray(y, np.float64).ravel(), np.asarray(s, np.float64).ravel()
    w = np.ones_like(y) if w is None else np.asarray(w, np.float64).ravel()
    u = np.unique(s)
    pos, neg = y == 1, y == 0
    f1 = np.array([w[pos & (s <= v)].sum() for v in u]) / w[pos].sum()
    f0 = np.array([w[neg & (s <= v)].sum() for v in u]) / w[neg].sum()
    return float(np.max(np.abs(f1 - f0)))


# -- ranking metrics ------------------------------------------------------------------------------
@pytest.mark.parametrize("ties", [True, False], ids=["ties", "no_ties"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_auc_roc_equals_sklearn(rng, ties, weighted):
    y, s, w = _binary_data(rng, ties=ties)
    w = w if weighted else None
    got = _accumulate(metrics.AUC(), y, s, w)
    assert got == pytest.approx(skm.roc_auc_score(y, s, sample_weight=w), abs=1e-6)
    assert metrics.roc_auc_score(y, s, sample_weight=w) == pytest.approx(got, abs=1e-6)


@pytest.mark.parametrize("ties", [True, False], ids=["ties", "no_ties"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_auc_pr_equals_average_precision(rng, ties, weighted):
    y, s, w = _binary_data(rng, ties=ties)
    w = w if weighted else None
    got = _accumulate(metrics.AUC(curve="PR"), y, s, w)
    assert got == pytest.approx(skm.average_precision_score(y, s, sample_weight=w), abs=1e-6)
    # and it is not the ROC AUC
    assert abs(got - skm.roc_auc_score(y, s, sample_weight=w)) > 1e-2


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_ks_equals_max_cdf_gap(rng, weighted):
    y, s, w = _binary_data(rng)
    w = w if weighted else None
    got = _accumulate(metrics.KolmogorovSmirnov(), y, s, w)
    assert got == pytest.approx(np_ks(y, s, w), abs=1e-6)
    assert metrics.ks_statistic(y, s, sample_weight=w) == pytest.approx(got, abs=1e-6)
    # Cross-check the NumPy statistic itself with scipy-free sklearn ROC: KS = max(TPR - FPR).
    fpr, tpr, _ = skm.roc_curve(y, s, sample_weight=w)
    assert np_ks(y, s, w) == pytest.approx(np.max(np.abs(tpr - fpr)), abs=1e-9)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_gini_is_two_auc_minus_one(rng, weighted):
    y, s, w = _binary_data(rng)
    w = w if weighted else None
    got = _accumulate(metrics.Gini(), y, s, w)
    assert got == pytest.approx(2 * skm.roc_auc_score(y, s, sample_weight=w) - 1, abs=2e-6)
    assert metrics.gini(y, s, sample_weight=w) == pytest.approx(got, abs=1e-6)


def test_ranking_metrics_from_logits(rng):
    y, s, w = _binary_data(rng, ties=False)
    z = np.log(s + 1e-3) - np.log(1 - s + 1e-3)  # a monotone transform: ranks unchanged
    assert _accumulate(metrics.AUC(from_logits=True), y, z, w) == pytest.approx(
        skm.roc_auc_score(y, s, sample_weight=w), abs=1e-6
    )
    assert _accumulate(metrics.KolmogorovSmirnov(from_logits=True), y, z, w) == pytest.approx(np_ks(y, s, w), abs=1e-6)


def test_reset_state_clears_accumulated_values(rng):
    y, s, w = _binary_data(rng)
    for m in (
        metrics.AUC(),
        metrics.AUC(curve="PR"),
        metrics.KolmogorovSmirnov(),
        metrics.Gini(),
        metrics.Precision(),
        metrics.Recall(),
        metrics.BinaryAccuracy(),
        metrics.RootMeanSquaredError(),
    ):
        m.update_state(1 - y[:200], s[:200], w[:200])  # very different data first
        before = m.result()
        m.reset_state()
        m.update_state(y[200:], s[200:], w[200:])
        fresh = type(m)(**({"curve": "PR"} if getattr(m, "curve", None) == "PR" else {}))
        fresh.update_state(y[200:], s[200:], w[200:])
        assert m.result() == pytest.approx(fresh.result(), abs=1e-7), type(m).__name__
        assert m.result() != pytest.approx(before, abs=1e-4), type(m).__name__


# -- thresholded metrics ---------------------------------------------------------------------------
def _with_exact_thresholds(s):
    s = s.copy()
    s[::17] = 0.5  # exactly at the default threshold: not positive (strict >)
    s[5::23] = 0.3
    return s


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_precision_recall_default_threshold(rng, weighted):
    y, s, w = _binary_data(rng, ties=False)
    s = _with_exact_thresholds(s)
    w = w if weighted else None
    pred = (s > 0.5).astype(int)
    assert _accumulate(metrics.Precision(), y, s, w) == pytest.approx(
        skm.precision_score(y, pred, sample_weight=w), abs=1e-6
    )
    assert _accumulate(metrics.Recall(), y, s, w) == pytest.approx(skm.recall_score(y, pred, sample_weight=w), abs=1e-6)
    # and not >= 0.5
    assert _accumulate(metrics.Recall(), y, s, w) != pytest.approx(
        skm.recall_score(y, (s >= 0.5).astype(int), sample_weight=w), abs=1e-6
    )


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_precision_recall_custom_thresholds(rng, weighted):
    y, s, w = _binary_data(rng, ties=False)
    s = _with_exact_thresholds(s)
    w = w if weighted else None
    thresholds = [0.3, 0.45, 0.7]
    prec = _accumulate(metrics.Precision(thresholds=thresholds), y, s, w)
    rec = _accumulate(metrics.Recall(thresholds=thresholds), y, s, w)
    assert np.shape(prec) == (3,) and np.shape(rec) == (3,)
    for k, t in enumerate(thresholds):
        pred = (s > t).astype(int)
        assert prec[k] == pytest.approx(skm.precision_score(y, pred, sample_weight=w), abs=1e-6)
        assert rec[k] == pytest.approx(skm.recall_score(y, pred, sample_weight=w), abs=1e-6)
    single = _accumulate(metrics.Precision(thresholds=0.3), y, s, w)
    assert single == pytest.approx(prec[0], abs=1e-7)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_precision_recall_class_id_and_multilabel(rng, weighted):
    n, k = 300, 4
    Y = (rng.random((n, k)) < 0.4).astype(np.float32)
    P = np.clip(0.3 * Y + 0.7 * rng.random((n, k)), 0, 1).astype(np.float32)
    w = rng.uniform(0, 2, n).astype(np.float32) if weighted else None
    for c in range(k):
        pred = (P[:, c] > 0.5).astype(int)
        assert _accumulate(metrics.Precision(class_id=c), Y, P, w) == pytest.approx(
            skm.precision_score(Y[:, c], pred, sample_weight=w), abs=1e-6
        )
        assert _accumulate(metrics.Recall(class_id=c, thresholds=0.6), Y, P, w) == pytest.approx(
            skm.recall_score(Y[:, c], (P[:, c] > 0.6).astype(int), sample_weight=w), abs=1e-6
        )
    # Without class_id every entry counts (micro over all labels).
    wr = None if w is None else np.repeat(w, k)
    assert _accumulate(metrics.Precision(), Y, P, w) == pytest.approx(
        skm.precision_score(Y.ravel(), (P.ravel() > 0.5).astype(int), sample_weight=wr), abs=1e-6
    )


@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.2])
def test_binary_accuracy_threshold(rng, threshold):
    y, s, w = _binary_data(rng, ties=False)
    s = _with_exact_thresholds(s)
    s[7::31] = threshold
    for weighted in (False, True):
        ww = w if weighted else None
        want = np.average((s > threshold) == (y == 1), weights=ww)
        got = _accumulate(metrics.BinaryAccuracy(threshold=threshold), y, s, ww)
        assert got == pytest.approx(want, abs=1e-6)


# -- F-beta ---------------------------------------------------------------------------------------
def _multiclass(rng, n=300, k=4):
    labels = rng.integers(0, k, n)
    P = rng.dirichlet(np.ones(k), n)
    P[np.arange(n), labels] += rng.uniform(0, 0.5, n)  # informative but imperfect
    P = P / P.sum(1, keepdims=True)
    return np.eye(k, dtype=np.float32)[labels], P.astype(np.float32), labels


def _multilabel(rng, n=300, k=4):
    Y = (rng.random((n, k)) < 0.45).astype(np.float32)
    P = np.clip(0.35 * Y + 0.65 * rng.random((n, k)), 0, 1).astype(np.float32)
    return Y, P


@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_f1_argmax_on_one_hot_multiclass(rng, average, weighted):
    Y, P, labels = _multiclass(rng)
    w = rng.uniform(0, 2, len(labels)).astype(np.float32) if weighted else None
    got = _accumulate(metrics.F1Score(average=average), Y, P, w)
    want = skm.f1_score(labels, P.argmax(1), average=average, sample_weight=w, labels=range(4))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    if average is None:
        assert np.shape(got) == (4,)
    else:
        assert isinstance(got, float)


@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"])
@pytest.mark.parametrize("beta", [0.5, 2.0])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_fbeta_threshold_on_multilabel(rng, average, beta, weighted):
    Y, P = _multilabel(rng)
    w = rng.uniform(0, 2, len(Y)).astype(np.float32) if weighted else None
    got = _accumulate(metrics.FBetaScore(average=average, beta=beta, threshold=0.55), Y, P, w)
    want = skm.fbeta_score(Y.astype(int), (P > 0.55).astype(int), beta=beta, average=average, sample_weight=w)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"])
def test_f1_threshold_on_multilabel_and_fbeta_argmax(rng, average):
    Y, P = _multilabel(rng)
    got = _accumulate(metrics.F1Score(average=average, threshold=0.4), Y, P)
    np.testing.assert_allclose(
        got, skm.f1_score(Y.astype(int), (P > 0.4).astype(int), average=average), rtol=1e-5, atol=1e-5
    )
    Yc, Pc, labels = _multiclass(rng)
    got = _accumulate(metrics.FBetaScore(average=average, beta=2.0), Yc, Pc)
    np.testing.assert_allclose(
        got, skm.fbeta_score(labels, Pc.argmax(1), beta=2.0, average=average), rtol=1e-5, atol=1e-5
    )


def test_f1_averages_differ_for_imbalanced_classes(rng):
    Y, P, labels = _multiclass(rng)
    vals = [_accumulate(metrics.F1Score(average=a), Y, P) for a in ("micro", "macro", "weighted")]
    assert len({round(v, 5) for v in vals}) == 3


# -- top-k, RMSE --------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_top_k_accuracy_equals_sklearn(rng, k, weighted):
    Y, P, labels = _multiclass(rng, k=5)
    w = rng.uniform(0, 2, len(labels)).astype(np.float32) if weighted else None
    want = skm.top_k_accuracy_score(labels, P, k=k, sample_weight=w, labels=range(5))
    assert _accumulate(metrics.TopKCategoricalAccuracy(k=k), Y, P, w) == pytest.approx(want, abs=1e-6)
    assert _accumulate(metrics.SparseTopKCategoricalAccuracy(k=k), labels.astype(np.float32), P, w) == pytest.approx(
        want, abs=1e-6
    )
    assert _accumulate(
        metrics.SparseTopKCategoricalAccuracy(k=k), labels.reshape(-1, 1).astype(np.float32), P, w
    ) == pytest.approx(want, abs=1e-6)


def test_top_k_default_is_five_and_distinct_ks_differ(rng):
    Y, P, labels = _multiclass(rng, k=8)
    assert metrics.TopKCategoricalAccuracy().k == 5
    vals = [_accumulate(metrics.TopKCategoricalAccuracy(k=k), Y, P) for k in (1, 3, 5)]
    assert vals[0] < vals[1] < vals[2]
    assert vals[2] == pytest.approx(skm.top_k_accuracy_score(labels, P, k=5, labels=range(8)), abs=1e-6)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_root_mean_squared_error(rng, weighted):
    Y = rng.standard_normal((200, 3)).astype(np.float32)
    P = (Y + rng.standard_normal((200, 3))).astype(np.float32)
    w = rng.uniform(0, 2, 200).astype(np.float32) if weighted else None
    per_row = ((P.astype(np.float64) - Y) ** 2).mean(1)
    want = np.sqrt(np.average(per_row, weights=w))
    assert _accumulate(metrics.RootMeanSquaredError(), Y, P, w) == pytest.approx(want, rel=1e-6)
    assert _accumulate(metrics.MeanSquaredError(), Y, P, w) == pytest.approx(want**2, rel=1e-6)


def test_metric_call_accumulates_like_keras(rng):
    y, s, w = _binary_data(rng)
    m = metrics.AUC()
    m(y[:150], s[:150])
    total = m(y[150:], s[150:])
    assert total == pytest.approx(skm.roc_auc_score(y, s), abs=1e-6)


@pytest.mark.parametrize(
    "name,cls",
    [
        ("auc", metrics.AUC),
        ("ks", metrics.KolmogorovSmirnov),
        ("gini", metrics.Gini),
        ("precision", metrics.Precision),
        ("recall", metrics.Recall),
        ("f1_score", metrics.F1Score),
        ("fbeta_score", metrics.FBetaScore),
        ("rmse", metrics.RootMeanSquaredError),
        ("root_mean_squared_error", metrics.RootMeanSquaredError),
        ("top_k_categorical_accuracy", metrics.TopKCategoricalAccuracy),
        ("sparse_top_k_categorical_accuracy", metrics.SparseTopKCategoricalAccuracy),
    ],
)
def test_metric_names_resolve(name, cls):
    m = metrics.get(name)
    assert type(m) is cls and m.name == name


@pytest.mark.parametrize(
    "make",
    [
        lambda: metrics.AUC(curve="XY"),
        lambda: metrics.Precision(thresholds=1.5),
        lambda: metrics.Recall(class_id=-1),
        lambda: metrics.F1Score(average="samples"),
        lambda: metrics.FBetaScore(beta=0),
        lambda: metrics.TopKCategoricalAccuracy(k=0),
        lambda: metrics.BinaryAccuracy(threshold=-0.1),
    ],
)
def test_invalid_metric_arguments_raise(make):
    with pytest.raises(ValueError):
        make()


def test_ranking_functions_reject_single_class():
    with pytest.raises(ValueError):
        metrics.roc_auc_score(np.ones(5), np.linspace(0, 1, 5))


# -- metrics inside compile / fit / evaluate ------------------------------------------------------------
def _binary_problem(rng, n=600):
    x = rng.standard_normal((n, 5)).astype(np.float32)
    logit = x @ np.array([1.5, -1.0, 0.5, 0.0, 0.8]) + 0.3 * rng.standard_normal(n)
    y = (logit > 0.4).astype(np.float32)
    w = np.where(y == 1, 3.0, 0.5).astype(np.float32) * rng.uniform(0.5, 1.5, n).astype(np.float32)
    return x, y, w


def test_compiled_ranking_and_weighted_metrics_match_standalone(rng):
    x, y, w = _binary_problem(rng)
    xt, yt, wt = x[:400], y[:400], w[:400]
    xv, yv, wv = x[400:], y[400:], w[400:]
    model = mf.Sequential([Dense(8, activation="relu", input_dim=5), Dense(1, activation="sigmoid")])
    model.compile(
        optimizer=mf.optimizers.Adam(0.01),
        loss="binary_crossentropy",
        metrics=["auc", "ks", "gini", "precision", "recall"],
        weighted_metrics=["accuracy"],
    )
    hist = model.fit(xt, yt, sample_weight=wt, validation_data=(xv, yv, wv), epochs=3, batch_size=64, verbose=0)
    for key in ("loss", "auc", "ks", "gini", "precision", "recall", "accuracy"):
        assert key in hist.history and len(hist.history[key]) == 3
        assert "val_" + key in hist.history and len(hist.history["val_" + key]) == 3
    res = model.evaluate(xv, yv, sample_weight=wv, batch_size=50, verbose=0, return_dict=True)
    # The last epoch's validation logs are the same computation as evaluate on the same data.
    for key in ("loss", "auc", "ks", "gini", "precision", "recall", "accuracy"):
        assert hist.history["val_" + key][-1] == pytest.approx(res[key], abs=1e-6)
    p = model.predict(xv).reshape(-1).astype(np.float64)
    assert res["auc"] == pytest.approx(skm.roc_auc_score(yv, p), abs=1e-6)  # unweighted metric
    assert res["ks"] == pytest.approx(np_ks(yv, p), abs=1e-6)
    assert res["gini"] == pytest.approx(2 * skm.roc_auc_score(yv, p) - 1, abs=2e-6)
    assert res["precision"] == pytest.approx(skm.precision_score(yv, (p > 0.5).astype(int)), abs=1e-6)
    assert res["recall"] == pytest.approx(skm.recall_score(yv, (p > 0.5).astype(int)), abs=1e-6)
    correct = ((p > 0.5) == (yv == 1)).astype(np.float64)
    weighted_acc, plain_acc = np.average(correct, weights=wv), correct.mean()
    assert abs(weighted_acc - plain_acc) > 1e-3  # the weights matter for this data
    assert res["accuracy"] == pytest.approx(weighted_acc, abs=1e-6)
    q = np.clip(p, 1e-7, 1 - 1e-7)
    bce = -(yv * np.log(q) + (1 - yv) * np.log(1 - q))
    assert res["loss"] == pytest.approx(np.sum(wv * bce) / len(yv), rel=1e-4)


def test_weighted_and_plain_metric_with_same_name_get_prefix(rng):
    x, y, w = _binary_problem(rng, 200)
    model = mf.Sequential([Dense(1, activation="sigmoid", input_dim=5)])
    model.compile(
        optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy", "auc"], weighted_metrics=["accuracy", "auc"]
    )
    res = model.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    assert set(res) == {"loss", "accuracy", "auc", "weighted_accuracy", "weighted_auc"}
    p = model.predict(x).reshape(-1).astype(np.float64)
    assert res["auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-6)
    assert res["weighted_auc"] == pytest.approx(skm.roc_auc_score(y, p, sample_weight=w), abs=1e-6)
    correct = (p > 0.5) == (y == 1)
    assert res["weighted_accuracy"] == pytest.approx(np.average(correct, weights=w), abs=1e-6)
    assert res["accuracy"] == pytest.approx(correct.mean(), abs=1e-6)


def test_compiled_f1_and_top_k_on_softmax(rng):
    n, k = 300, 4
    x = rng.standard_normal((n, 6)).astype(np.float32)
    labels = np.argmax(x[:, :k] + 0.5 * rng.standard_normal((n, k)), axis=1)
    Y = np.eye(k, dtype=np.float32)[labels]
    model = mf.Sequential([Dense(k, activation="softmax", input_dim=6)])
    model.compile(
        optimizer=mf.optimizers.Adam(0.05),
        loss="categorical_crossentropy",
        metrics=[metrics.F1Score(average="macro", name="f1"), metrics.TopKCategoricalAccuracy(k=2), "accuracy"],
    )
    model.fit(x, Y, epochs=3, batch_size=32, verbose=0)
    res = model.evaluate(x, Y, verbose=0, return_dict=True)
    P = model.predict(x)
    assert res["f1"] == pytest.approx(skm.f1_score(labels, P.argmax(1), average="macro"), abs=1e-5)
    assert res["top_k_categorical_accuracy"] == pytest.approx(
        skm.top_k_accuracy_score(labels, P, k=2, labels=range(k)), abs=1e-6
    )
    assert res["accuracy"] == pytest.approx(np.mean(P.argmax(1) == labels), abs=1e-6)


@pytest.mark.parametrize(
    "loss,metric,targets",
    [
        ("categorical_crossentropy", "sparse_categorical_accuracy", "one_hot"),
        ("categorical_crossentropy", "sparse_top_k_categorical_accuracy", "one_hot"),
        ("sparse_categorical_crossentropy", "categorical_accuracy", "ids"),
        ("sparse_categorical_crossentropy", "top_k_categorical_accuracy", "ids"),
    ],
)
def test_metric_loss_target_mismatch_raises_value_error(rng, loss, metric, targets):
    n, k = 40, 3
    x = rng.standard_normal((n, 4)).astype(np.float32)
    ids = rng.integers(0, k, n)
    y = np.eye(k, dtype=np.float32)[ids] if targets == "one_hot" else ids.astype(np.float32)
    model = mf.Sequential([Dense(k, activation="softmax", input_dim=4)])
    model.compile(optimizer="sgd", loss=loss, metrics=[metric])
    with pytest.raises(ValueError):
        model.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError):
        model.evaluate(x, y, verbose=0)
    # The model is intact: recompiled with a matching metric it trains and evaluates.
    model.compile(optimizer="sgd", loss=loss, metrics=["accuracy"])
    hist = model.fit(x, y, epochs=1, verbose=0)
    assert np.isfinite(hist.history["loss"][0])
    res = model.evaluate(x, y, verbose=0, return_dict=True)
    assert res["accuracy"] == pytest.approx(np.mean(model.predict(x).argmax(1) == ids), abs=1e-6)


def _top_k_mask(P, k):
    """Keras's top_k: per row the k largest scores, ties to the lower index."""
    order = np.lexsort((np.arange(P.shape[1])[None, :].repeat(len(P), 0), -P), axis=1)[:, :k]
    mask = np.zeros_like(P, dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask


@pytest.mark.parametrize("cls", [metrics.Precision, metrics.Recall])
@pytest.mark.parametrize(
    "top_k, thresholds, class_id",
    [(1, None, None), (2, None, None), (2, 0.3, None), (2, None, 3), (3, [0.2, 0.6], None)],
)
def test_precision_recall_top_k_against_numpy(rng, cls, top_k, thresholds, class_id):
    P = rng.random((120, 6)).astype(np.float32)
    P[:10, 1] = P[:10, 2]  # ties: the lower index wins
    Y = (rng.random((120, 6)) < 0.3).astype(np.float32)
    w = rng.random(120).astype(np.float32)
    m = cls(thresholds=thresholds, top_k=top_k, class_id=class_id)
    got = _accumulate(m, Y, P, w)
    ths = [-np.inf] if thresholds is None else np.atleast_1d(thresholds)
    cols = slice(None) if class_id is None else slice(class_id, class_id + 1)
    want = []
    for t in ths:
        pred = (_top_k_mask(P, top_k) & (P > t))[:, cols]
        truth = (Y > 0.5)[:, cols]
        ww = w[:, None]
        tp = (ww * (pred & truth)).sum()
        den = tp + (ww * (pred & ~truth)).sum() if cls is metrics.Precision else tp + (ww * (~pred & truth)).sum()
        want.append(tp / den)
    np.testing.assert_allclose(np.atleast_1d(got), want, rtol=1e-6)
    # top_k=1 without thresholds is a different metric from the plain 0.5 threshold
    assert cls(top_k=top_k).get_config()["top_k"] == top_k


def test_multi_label_auc_is_the_weighted_mean_of_per_column_aucs(rng):
    P = rng.random((300, 3)).astype(np.float32)
    Y = (rng.random((300, 3)) < np.array([0.2, 0.5, 0.7]) + 0.3 * (P - 0.5)).astype(np.float32)
    w = rng.random(300).astype(np.float32)
    per = [skm.roc_auc_score(Y[:, j], P[:, j], sample_weight=w) for j in range(3)]
    assert _accumulate(metrics.AUC(multi_label=True), Y, P, w) == pytest.approx(np.mean(per), abs=1e-6)
    lw = np.array([1.0, 3.0, 0.5], np.float32)
    got = _accumulate(metrics.AUC(multi_label=True, num_labels=3, label_weights=lw), Y, P, w)
    assert got == pytest.approx(np.dot(per, lw) / lw.sum(), abs=1e-6)
    pr = [skm.average_precision_score(Y[:, j], P[:, j], sample_weight=w) for j in range(3)]
    assert _accumulate(metrics.AUC(curve="PR", multi_label=True), Y, P, w) == pytest.approx(np.mean(pr), abs=1e-6)
    # Flattened (multi_label=False): one ranking, entries weighted by their column's label weight.
    flat_w = (w[:, None] * lw[None, :]).ravel()
    want = skm.roc_auc_score(Y.ravel(), P.ravel(), sample_weight=flat_w)
    assert _accumulate(metrics.AUC(label_weights=lw), Y, P, w) == pytest.approx(want, abs=1e-6)
    with pytest.raises(ValueError, match="num_labels is 4"):
        metrics.AUC(multi_label=True, num_labels=4).update_state(Y, P)
    with pytest.raises(ValueError, match="label_weights"):
        metrics.AUC(label_weights=[1.0, -1.0])


def test_multi_label_auc_in_fit(rng):
    x = rng.normal(size=(256, 4)).astype(np.float32)
    y = (x[:, :3] + 0.5 * rng.normal(size=(256, 3)) > 0).astype(np.float32)
    model = mf.Sequential([mf.layers.Input(shape=(4,)), Dense(3, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=[metrics.AUC(multi_label=True, name="mauc")])
    model.fit(x, y, epochs=2, verbose=0)
    res = model.evaluate(x, y, return_dict=True, verbose=0)
    p = model.predict(x)
    want = np.mean([skm.roc_auc_score(y[:, j], p[:, j]) for j in range(3)])
    assert res["mauc"] == pytest.approx(want, abs=1e-6)
