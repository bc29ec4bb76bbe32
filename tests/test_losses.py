"""Losses: values and gradients of `_core.loss_compute` and the `maasfin.losses` classes against a
float64 NumPy statement of Keras 3's formulas, and name resolution.

Keras 3 conventions checked here:
  * reduction "sum_over_batch_size": batch loss = sum_i w_i * l_i / N (N rows, not sum of weights);
  * binary_crossentropy clips p to [eps, 1 - eps] (eps = 1e-7, in float32) and averages over the
    last axis; from_logits uses the stable sigmoid cross-entropy;
  * categorical_crossentropy divides p by its row sum, clips, and sums -t log q over classes;
  * sparse_categorical_crossentropy takes class ids;
  * mse / mae average over the last axis; hinge maps {0, 1} labels to {-1, 1}.
"""

import math

import numpy as np
import pytest

from maasfin import _core, losses

EPS32 = np.float32(1e-7)


# -- NumPy reference (per-sample losses, float64 math) -----------------------------------------
# Keras clips in the tensor's dtype (float32), where 1 - 1e-7 rounds to 1 - 2**-23.
LO, HI = float(EPS32), float(np.float32(1) - EPS32)


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def np_per_sample(name, from_logits, y_true, y_pred):
    t = np.asarray(y_true, np.float64)
    p = np.asarray(y_pred, np.float64)
    if name == "binary_crossentropy":
        if from_logits:
            l = np.maximum(p, 0) - p * t + np.log1p(np.exp(-np.abs(p)))
        else:
            q = np.clip(p, LO, HI)
            l = -(t * np.log(q) + (1 - t) * np.log(1 - q))
        return l.mean(axis=-1)
    if name in ("categorical_crossentropy", "sparse_categorical_crossentropy"):
        if name == "sparse_categorical_crossentropy":
            t = np.eye(p.shape[-1])[t.reshape(-1).astype(np.int64)]
        if from_logits:
            return -(t * _log_softmax(p)).sum(axis=-1)
        q = p / p.sum(axis=-1, keepdims=True)
        q = np.clip(q, LO, HI)
        return -(t * np.log(q)).sum(axis=-1)
    if name == "mean_squared_error":
        return ((p - t) ** 2).mean(axis=-1)
    if name == "mean_absolute_error":
        return np.abs(p - t).mean(axis=-1)
    if name == "hinge":
        if np.all((t == 0) | (t == 1)):
            t = 2 * t - 1
        return np.maximum(1 - t * p, 0).mean(axis=-1)
    raise AssertionError(name)


def np_loss(name, from_logits, y_true, y_pred, w=None):
    l = np_per_sample(name, from_logits, y_true, y_pred)
    w = np.ones(len(l)) if w is None else np.asarray(w, np.float64)
    return float(np.sum(w * l) / len(l))


def np_grad(name, from_logits, y_true, y_pred, w=None, h=1e-6):
    """Central finite differences of np_loss w.r.t. y_pred, in float64."""
    p = np.asarray(y_pred, np.float64)
    g = np.empty_like(p)
    for idx in np.ndindex(p.shape):
        pp, pm = p.copy(), p.copy()
        pp[idx] += h
        pm[idx] -= h
        g[idx] = (np_loss(name, from_logits, y_true, pp, w) - np_loss(name, from_logits, y_true, pm, w)) / (2 * h)
    return g


# -- cases -----------------------------------------------------------------------------------
N = 6


def _make(case, rng):
    """(core name, from_logits, y_true, y_pred) as float32 arrays, away from clip points and kinks."""
    if case == "bce":
        return "binary_crossentropy", False, (rng.random((N, 1)) < 0.5), rng.uniform(0.05, 0.95, (N, 1))
    if case == "bce_multilabel":
        return "binary_crossentropy", False, (rng.random((N, 3)) < 0.5), rng.uniform(0.05, 0.95, (N, 3))
    if case == "bce_soft_targets":
        return "binary_crossentropy", False, rng.random((N, 2)), rng.uniform(0.05, 0.95, (N, 2))
    if case == "bce_logits":
        return "binary_crossentropy", True, (rng.random((N, 3)) < 0.5), 3 * rng.standard_normal((N, 3))
    if case == "cce":
        return ("categorical_crossentropy", False, np.eye(4)[rng.integers(0, 4, N)], rng.dirichlet(np.ones(4), N))
    if case == "cce_unnormalised":  # rows do not sum to 1: Keras normalises them first
        return ("categorical_crossentropy", False, np.eye(4)[rng.integers(0, 4, N)], rng.uniform(0.1, 2.0, (N, 4)))
    if case == "cce_soft_targets":
        return ("categorical_crossentropy", False, rng.dirichlet(np.ones(4), N), rng.dirichlet(np.ones(4), N))
    if case == "cce_logits":
        return ("categorical_crossentropy", True, np.eye(4)[rng.integers(0, 4, N)], 2 * rng.standard_normal((N, 4)))
    if case == "cce_logits_soft_targets":  # targets summing to != 1 (scaled) exercise sum(t)*softmax - t
        return ("categorical_crossentropy", True, 1.5 * rng.dirichlet(np.ones(4), N), 2 * rng.standard_normal((N, 4)))
    if case == "sparse_cce":
        return ("sparse_categorical_crossentropy", False, rng.integers(0, 4, (N, 1)), rng.dirichlet(np.ones(4), N))
    if case == "sparse_cce_logits":
        return ("sparse_categorical_crossentropy", True, rng.integers(0, 4, (N, 1)), 2 * rng.standard_normal((N, 4)))
    if case == "mse":
        return "mean_squared_error", False, rng.standard_normal((N, 3)), rng.standard_normal((N, 3))
    if case == "mae":
        return "mean_absolute_error", False, rng.standard_normal((N, 3)), rng.standard_normal((N, 3))
    if case == "hinge_01":
        p = rng.standard_normal((N, 3))
        return "hinge", False, (rng.random((N, 3)) < 0.5), p
    if case == "hinge_pm1":
        return "hinge", False, np.where(rng.random((N, 3)) < 0.5, -1.0, 1.0), rng.standard_normal((N, 3))
    if case == "hinge_real_targets":  # not all in {0, 1}: used as given
        return "hinge", False, rng.uniform(-1, 1, (N, 3)), rng.standard_normal((N, 3))
    raise AssertionError(case)


CASES = [
    "bce",
    "bce_multilabel",
    "bce_soft_targets",
    "bce_logits",
    "cce",
    "cce_unnormalised",
    "cce_soft_targets",
    "cce_logits",
    "cce_logits_soft_targets",
    "sparse_cce",
    "sparse_cce_logits",
    "mse",
    "mae",
    "hinge_01",
    "hinge_pm1",
    "hinge_real_targets",
]


def _case(case, rng):
    name, logits, t, p = _make(case, rng)
    t, p = np.asarray(t, np.float32), np.asarray(p, np.float32)
    if name == "hinge":  # keep |margin| away from the kink at 1 - y p = 0
        y = 2 * t - 1 if np.all((t == 0) | (t == 1)) else t
        m = 1 - y * p
        p = np.where(np.abs(m) < 0.05, p + 0.2, p).astype(np.float32)
    if name == "mean_absolute_error":
        e = p - t
        p = np.where(np.abs(e) < 0.05, p + 0.2, p).astype(np.float32)
    return name, logits, t, p


def _weights(kind, rng):
    if kind is None:
        return None
    w = rng.uniform(0.0, 3.0, N).astype(np.float32)
    w[1] = 0.0
    return w


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", CASES)
def test_loss_value_matches_keras_formula(rng, case, weighted):
    name, logits, t, p = _case(case, rng)
    w = _weights(weighted or None, rng)
    value, grad, _ = _core.loss_compute(_core.LossSpec(name, from_logits=logits), t, p, w)
    assert value == pytest.approx(np_loss(name, logits, t, p, w), rel=1e-6, abs=1e-7)
    assert grad.shape == p.shape and grad.dtype == np.float32


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", CASES)
def test_loss_gradient_matches_finite_differences(rng, case, weighted):
    name, logits, t, p = _case(case, rng)
    w = _weights(weighted or None, rng)
    _, grad, _ = _core.loss_compute(_core.LossSpec(name, from_logits=logits), t, p, w)
    expected = np_grad(name, logits, t, p, w)
    assert np.max(np.abs(expected)) > 1e-3
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-6)
    if weighted:  # a zero-weight row has zero gradient
        np.testing.assert_array_equal(grad[1], 0.0)


def test_sum_over_batch_size_divides_by_rows_not_weights(rng):
    name, logits, t, p = _case("mse", rng)
    per = np_per_sample(name, False, t, p)
    w = np.full(N, 0.5, np.float32)
    value, grad, _ = _core.loss_compute(_core.LossSpec(name, from_logits=False), t, p, w)
    assert value == pytest.approx(0.5 * per.mean(), rel=1e-6)  # not per.mean() (dividing by sum w)
    _, grad1, _ = _core.loss_compute(_core.LossSpec(name, from_logits=False), t, p, None)
    np.testing.assert_allclose(grad, 0.5 * grad1, rtol=1e-6)


def test_weights_summing_to_zero_give_zero_loss_and_gradient(rng):
    # Keras's divide_no_nan: "mean_with_sample_weight" over all-zero weights is 0, not 0/0.
    name, logits, t, p = _case("mse", rng)
    spec = _core.LossSpec(name, reduction="mean_with_sample_weight")
    value, grad, per_sample = _core.loss_compute(spec, t, p, np.zeros(N, np.float32))
    assert value == 0.0
    np.testing.assert_array_equal(grad, 0.0)
    np.testing.assert_allclose(per_sample, np_per_sample(name, False, t, p), rtol=1e-6)


def test_bce_clips_probabilities():
    t = np.array([[1.0], [0.0], [1.0], [0.0]], np.float32)
    p = np.array([[0.0], [1.0], [1.0], [0.0]], np.float32)  # two certain mistakes, two certain hits
    value, grad, _ = _core.loss_compute(_core.LossSpec("binary_crossentropy", from_logits=False), t, p, None)
    lo, hi = EPS32, np.float32(1) - EPS32
    expected = (-math.log(lo) - math.log(1 - float(hi)) - math.log(float(hi)) - math.log(1 - float(lo))) / 4
    assert math.isfinite(value)
    assert value == pytest.approx(expected, rel=1e-5)
    assert value == pytest.approx(np_loss("binary_crossentropy", False, t, p), rel=1e-5)
    assert np.all(np.isfinite(grad))


def test_cce_clips_zero_probability():
    t = np.array([[0, 1, 0], [1, 0, 0]], np.float32)
    p = np.array([[0.5, 0.0, 0.5], [0.2, 0.3, 0.5]], np.float32)
    value, grad, _ = _core.loss_compute(_core.LossSpec("categorical_crossentropy", from_logits=False), t, p, None)
    assert value == pytest.approx((-math.log(1e-7) - math.log(0.2)) / 2, rel=1e-5)
    assert np.all(np.isfinite(grad))


def test_from_logits_bce_is_stable_for_large_logits():
    t = np.array([[1.0, 0.0, 1.0, 0.0]], np.float32)
    z = np.array([[100.0, -100.0, -100.0, 100.0]], np.float32)
    value, grad, _ = _core.loss_compute(_core.LossSpec("binary_crossentropy", from_logits=True), t, z, None)
    assert value == pytest.approx(100.0 / 2, rel=1e-6)  # two right (~0), two wrong (100 each), mean over 4
    np.testing.assert_allclose(grad, [[0.0, 0.0, -0.25, 0.25]], atol=1e-7)


def test_from_logits_matches_probabilities_after_activation(rng):
    z = rng.standard_normal((N, 4)).astype(np.float32)
    t = np.eye(4, dtype=np.float32)[rng.integers(0, 4, N)]
    sm = np.exp(_log_softmax(z.astype(np.float64))).astype(np.float32)
    a, _, _ = _core.loss_compute(_core.LossSpec("categorical_crossentropy", from_logits=True), t, z, None)
    b, _, _ = _core.loss_compute(_core.LossSpec("categorical_crossentropy", from_logits=False), t, sm, None)
    assert a == pytest.approx(b, rel=1e-5)
    tb = (rng.random((N, 4)) < 0.5).astype(np.float32)
    sg = (1 / (1 + np.exp(-z.astype(np.float64)))).astype(np.float32)
    a, _, _ = _core.loss_compute(_core.LossSpec("binary_crossentropy", from_logits=True), tb, z, None)
    b, _, _ = _core.loss_compute(_core.LossSpec("binary_crossentropy", from_logits=False), tb, sg, None)
    assert a == pytest.approx(b, rel=1e-5)


def test_sparse_equals_categorical_with_one_hot(rng):
    ids = rng.integers(0, 5, N)
    p = rng.dirichlet(np.ones(5), N).astype(np.float32)
    w = rng.uniform(0.5, 2, N).astype(np.float32)
    for logits in (False, True):
        vs, gs, _ = _core.loss_compute(
            _core.LossSpec("sparse_categorical_crossentropy", from_logits=logits),
            ids.reshape(-1, 1).astype(np.float32),
            p,
            w,
        )
        vc, gc, _ = _core.loss_compute(
            _core.LossSpec("categorical_crossentropy", from_logits=logits), np.eye(5, dtype=np.float32)[ids], p, w
        )
        assert vs == pytest.approx(vc, rel=1e-6)
        np.testing.assert_allclose(gs, gc, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("bad_id", [3.0, -1.0, 1.5, float("nan")])
def test_sparse_rejects_bad_class_ids(bad_id):
    t = np.array([[0.0], [bad_id]], np.float32)
    p = np.full((2, 3), 1 / 3, np.float32)
    with pytest.raises(ValueError, match="class id"):
        _core.loss_compute(_core.LossSpec("sparse_categorical_crossentropy", from_logits=False), t, p, None)


def test_hinge_converts_binary_labels():
    p = np.array([[0.3, -2.0], [0.5, 1.5]], np.float32)
    t01 = np.array([[1, 0], [0, 1]], np.float32)
    v01, g01, _ = _core.loss_compute(_core.LossSpec("hinge", from_logits=False), t01, p, None)
    vpm, gpm, _ = _core.loss_compute(_core.LossSpec("hinge", from_logits=False), 2 * t01 - 1, p, None)
    # y = [[1, -1], [-1, 1]]: margins 1 - y p = [[0.7, -1], [1.5, -0.5]] -> hinge [[0.7, 0], [1.5, 0]]
    assert v01 == pytest.approx(((0.7 + 0) / 2 + (1.5 + 0) / 2) / 2, rel=1e-6)
    assert vpm == pytest.approx(v01, rel=1e-7)
    np.testing.assert_array_equal(g01, gpm)


# -- the Python classes --------------------------------------------------------------------------
CLASS_CASES = [
    (losses.BinaryCrossentropy, {}, "bce"),
    (losses.BinaryCrossentropy, {"from_logits": True}, "bce_logits"),
    (losses.CategoricalCrossentropy, {}, "cce_unnormalised"),
    (losses.CategoricalCrossentropy, {"from_logits": True}, "cce_logits"),
    (losses.SparseCategoricalCrossentropy, {}, "sparse_cce"),
    (losses.SparseCategoricalCrossentropy, {"from_logits": True}, "sparse_cce_logits"),
    (losses.MeanSquaredError, {}, "mse"),
    (losses.MeanAbsoluteError, {}, "mae"),
    (losses.Hinge, {}, "hinge_01"),
]


@pytest.mark.parametrize("cls,kwargs,case", CLASS_CASES, ids=[c[2] for c in CLASS_CASES])
def test_loss_classes_match_keras_formula(rng, cls, kwargs, case):
    name, logits, t, p = _case(case, rng)
    loss = cls(**kwargs)
    assert loss.core_name == name and loss.from_logits == logits
    w = rng.uniform(0, 2, N)
    assert loss(t, p) == pytest.approx(np_loss(name, logits, t, p), rel=1e-6, abs=1e-7)
    assert loss(t, p, sample_weight=w) == pytest.approx(np_loss(name, logits, t, p, w), rel=1e-6, abs=1e-7)
    # float64 and list inputs are accepted and converted.
    assert loss(t.astype(np.float64).tolist(), p.astype(np.float64), w.tolist()) == pytest.approx(
        np_loss(name, logits, t, p, w), rel=1e-6, abs=1e-7
    )


def test_loss_class_accepts_1d_binary_vectors(rng):
    t = (rng.random(N) < 0.5).astype(np.float32)
    p = rng.uniform(0.05, 0.95, N).astype(np.float32)
    bce = losses.BinaryCrossentropy()
    assert bce(t, p) == pytest.approx(bce(t.reshape(-1, 1), p.reshape(-1, 1)), rel=1e-7)
    assert bce(t, p) == pytest.approx(
        np_loss("binary_crossentropy", False, t.reshape(-1, 1), p.reshape(-1, 1)), rel=1e-6
    )


@pytest.mark.parametrize(
    "identifier,cls",
    [
        ("binary_crossentropy", losses.BinaryCrossentropy),
        ("bce", losses.BinaryCrossentropy),
        ("BinaryCrossentropy", losses.BinaryCrossentropy),
        ("categorical_crossentropy", losses.CategoricalCrossentropy),
        ("cce", losses.CategoricalCrossentropy),
        ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
        ("mean_squared_error", losses.MeanSquaredError),
        ("mse", losses.MeanSquaredError),
        ("mean_absolute_error", losses.MeanAbsoluteError),
        ("mae", losses.MeanAbsoluteError),
        ("hinge", losses.Hinge),
        ("Hinge", losses.Hinge),
    ],
)
def test_get_resolves_names_and_aliases(identifier, cls):
    loss = losses.get(identifier)
    assert type(loss) is cls
    assert loss.from_logits is False
    assert loss.core_name in _core.loss_names().split(", ")


def test_get_passes_through_instances_classes_and_functions():
    inst = losses.BinaryCrossentropy(from_logits=True)
    assert losses.get(inst) is inst
    assert type(losses.get(losses.Hinge)) is losses.Hinge
    assert type(losses.get(losses.mean_absolute_error)) is losses.MeanAbsoluteError


def test_get_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as exc:
        losses.get("mean_squared_eror")
    msg = str(exc.value)
    assert "mean_squared_eror" in msg
    for valid in (
        "binary_crossentropy",
        "categorical_crossentropy",
        "sparse_categorical_crossentropy",
        "mean_squared_error",
        "mean_absolute_error",
        "hinge",
        "mse",
        "bce",
    ):
        assert valid in msg


def test_get_rejects_non_loss_objects():
    with pytest.raises(TypeError):
        losses.get(3)


def test_core_unknown_loss_lists_valid_names():
    t = np.zeros((2, 1), np.float32)
    with pytest.raises(ValueError) as exc:
        _core.loss_compute(_core.LossSpec("no_such_loss", from_logits=False), t, t, None)
    for valid in _core.loss_names().split(", "):
        assert valid in str(exc.value)


@pytest.mark.parametrize(
    "make",
    [
        lambda: losses.SparseCategoricalCrossentropy(ignore_class=0),
        lambda: losses.MeanSquaredError(reduction="max"),
        lambda: losses.BinaryCrossentropy(label_smoothing=1.5),
        lambda: losses.Huber(delta=0),
    ],
    ids=["ignore_class", "bad_reduction", "bad_smoothing", "bad_delta"],
)
def test_unsupported_options_raise(make):
    with pytest.raises(ValueError):
        make()


# -- shape checks ------------------------------------------------------------------------------
# Keras raises on targets, predictions or weights of incompatible shapes; silently reading past the
# end of an array (or pairing the wrong rows) is never acceptable.
LOSS_SHAPE_ERRORS = {
    "targets_narrower": (losses.MeanSquaredError, (4, 2), (4, 3), None),
    "targets_fewer_rows": (losses.MeanSquaredError, (2, 3), (4, 3), None),
    "bce_targets_wider": (losses.BinaryCrossentropy, (4, 3), (4, 2), None),
    "weights_too_short": (losses.MeanAbsoluteError, (4, 3), (4, 3), 2),
    "weights_too_long": (losses.MeanAbsoluteError, (4, 3), (4, 3), 6),
    "sparse_given_one_hot": (losses.SparseCategoricalCrossentropy, (4, 3), (4, 3), None),
}


@pytest.mark.parametrize("case", sorted(LOSS_SHAPE_ERRORS))
def test_loss_class_rejects_incompatible_shapes(case):
    cls, t_shape, p_shape, w_len = LOSS_SHAPE_ERRORS[case]
    t = np.zeros(t_shape, np.float32)
    if cls is losses.SparseCategoricalCrossentropy:
        t[np.arange(t_shape[0]), np.arange(t_shape[0]) % t_shape[1]] = 1.0  # one-hot rows
    p = np.full(p_shape, 0.5, np.float32)
    w = None if w_len is None else np.ones(w_len, np.float32)
    with pytest.raises(ValueError):
        cls()(t, p, w)


@pytest.mark.parametrize(
    "name,t_shape,p_shape,w_len",
    [
        ("mean_squared_error", (4, 2), (4, 3), None),
        ("hinge", (4, 3), (4, 3), 3),
        ("sparse_categorical_crossentropy", (2, 1), (4, 3), None),
    ],
    ids=["mse_narrow_targets", "hinge_short_weights", "sparse_short_ids"],
)
def test_core_loss_compute_rejects_incompatible_shapes(name, t_shape, p_shape, w_len):
    t = np.zeros(t_shape, np.float32)
    p = np.full(p_shape, 0.5, np.float32)
    w = None if w_len is None else np.ones(w_len, np.float32)
    with pytest.raises(ValueError):
        _core.loss_compute(_core.LossSpec(name, from_logits=False), t, p, w)


@pytest.mark.parametrize(
    "fn, cls",
    [
        (losses.mean_squared_error, losses.MeanSquaredError),
        (losses.mean_absolute_error, losses.MeanAbsoluteError),
        (losses.binary_crossentropy, losses.BinaryCrossentropy),
    ],
)
def test_loss_functions_return_one_value_per_sample(rng, fn, cls):
    """Keras's loss functions are unreduced: their mean is the class's reduced loss."""
    t = (rng.random((6, 2)) > 0.5).astype(np.float32)
    p = rng.uniform(0.05, 0.95, (6, 2)).astype(np.float32)
    per = fn(t, p)
    assert per.shape == (6,)
    if cls is losses.MeanSquaredError:
        np.testing.assert_allclose(per, ((p - t) ** 2).mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(per.mean(), cls()(t, p), rtol=1e-6)
