"""Every maasfin.losses class against a float64 NumPy statement of Keras 3's formula
(keras/src/losses/losses.py), gradients against central finite differences of that formula,
Keras 3's reductions with sample weights, the unreduced loss functions, and name resolution.

Conventions (Keras 3): eps = backend.epsilon() = 1e-7; binary_crossentropy clips p to
[eps, 1 - eps]; label smoothing is t(1 - s) + s/2 (binary, focal) or t(1 - s) + s/K (categorical);
reductions weight the per-sample values first, then "sum" adds them, "sum_over_batch_size"
divides by the number of rows, "mean_with_sample_weight" by the sum of the weights, and
None/"none" returns the weighted per-sample values.
"""

import math

import numpy as np
import pytest

from maasfin import _core, losses

EPS = 1e-7
LO, HI = float(np.float32(EPS)), float(np.float32(1) - np.float32(EPS))
N = 7


# -- NumPy reference ----------------------------------------------------------------------------
def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _bce_prob(t, p):
    q = np.clip(p, LO, HI)
    return -(t * np.log(q) + (1 - t) * np.log(1 - q))


def np_per_sample(name, t, p, **kw):
    t = np.asarray(t, np.float64)
    p = np.asarray(p, np.float64)
    ls = kw.get("label_smoothing", 0.0)
    logits = kw.get("from_logits", False)
    if name == "binary_crossentropy":
        t = t * (1 - ls) + 0.5 * ls
        if logits:
            return (np.maximum(p, 0) - p * t + np.log1p(np.exp(-np.abs(p)))).mean(-1)
        return _bce_prob(t, p).mean(-1)
    if name == "binary_focal_crossentropy":
        gamma, alpha = kw.get("gamma", 2.0), kw.get("alpha", 0.25)
        t = t * (1 - ls) + 0.5 * ls
        if logits:
            p = _sigmoid(p)
        bce = _bce_prob(t, p)
        p_t = t * p + (1 - t) * (1 - p)
        focal = (1 - p_t) ** gamma * bce
        if kw.get("apply_class_balancing", False):
            focal = (t * alpha + (1 - t) * (1 - alpha)) * focal
        return focal.mean(-1)
    if name == "categorical_crossentropy":
        t = t * (1 - ls) + ls / t.shape[-1]
        if logits:
            z = p - p.max(-1, keepdims=True)
            logsm = z - np.log(np.exp(z).sum(-1, keepdims=True))
            return -(t * logsm).sum(-1)
        q = np.clip(p / p.sum(-1, keepdims=True), LO, HI)
        return -(t * np.log(q)).sum(-1)
    if name == "mean_absolute_percentage_error":
        return 100 * np.abs((t - p) / np.maximum(np.abs(t), EPS)).mean(-1)
    if name == "mean_squared_logarithmic_error":
        return ((np.log(np.maximum(p, EPS) + 1) - np.log(np.maximum(t, EPS) + 1)) ** 2).mean(-1)
    if name == "huber":
        d = kw.get("delta", 1.0)
        e = p - t
        a = np.abs(e)
        return np.where(a <= d, 0.5 * e * e, d * a - 0.5 * d * d).mean(-1)
    if name == "log_cosh":
        x = p - t
        return (x + _softplus(-2 * x) - math.log(2)).mean(-1)
    if name == "squared_hinge":
        if np.all((t == 0) | (t == 1)):
            t = 2 * t - 1
        return (np.maximum(1 - t * p, 0) ** 2).mean(-1)
    if name == "categorical_hinge":
        pos = (t * p).sum(-1)
        neg = ((1 - t) * p).max(-1)
        return np.maximum(neg - pos + 1, 0)
    if name == "kl_divergence":
        tc, pc = np.clip(t, EPS, 1), np.clip(p, EPS, 1)
        return (tc * np.log(tc / pc)).sum(-1)
    if name == "poisson":
        return (p - t * np.log(p + EPS)).mean(-1)
    if name == "mean_squared_error":
        return ((p - t) ** 2).mean(-1)
    raise AssertionError(name)


def np_reduce(per, w, reduction):
    n = len(per)
    vals = per if w is None else per * np.asarray(w, np.float64)
    if reduction in (None, "none"):
        return vals
    s = vals.sum()
    if reduction == "sum":
        return s
    if reduction == "mean_with_sample_weight" and w is not None:
        tot = float(np.sum(w))
        return 0.0 if tot == 0 else s / tot
    return s / n


def np_fd_grad(name, t, p, w, kw, reduction="sum_over_batch_size", h=1e-6):
    p = np.asarray(p, np.float64)
    g = np.empty_like(p)
    for idx in np.ndindex(p.shape):
        pp, pm = p.copy(), p.copy()
        pp[idx] += h
        pm[idx] -= h
        g[idx] = (
            np_reduce(np_per_sample(name, t, pp, **kw), w, reduction)
            - np_reduce(np_per_sample(name, t, pm, **kw), w, reduction)
        ) / (2 * h)
    return g


# -- cases: (class, kwargs, core name, y_true, y_pred), away from clip points and kinks ----------------
def _binary(rng, d=3):
    return (rng.random((N, d)) < 0.5).astype(np.float64)


def _make(case, rng):
    if case.startswith("focal"):
        t = _binary(rng)
        if "logits" in case:
            p = rng.uniform(-3, 3, (N, 3))
        else:
            p = rng.uniform(0.05, 0.95, (N, 3))
        kw = {
            "focal": {},
            "focal_gamma0": {"gamma": 0.0},
            "focal_gamma3.5": {"gamma": 3.5},
            "focal_balanced": {"apply_class_balancing": True},
            "focal_balanced_alpha": {"apply_class_balancing": True, "alpha": 0.7, "gamma": 1.5},
            "focal_alpha_ignored_unbalanced": {"alpha": 0.9},
            "focal_logits": {"from_logits": True},
            "focal_logits_balanced_smooth": {
                "from_logits": True,
                "apply_class_balancing": True,
                "label_smoothing": 0.2,
            },
            "focal_smoothing": {"label_smoothing": 0.1},
        }[case]
        return losses.BinaryFocalCrossentropy, kw, "binary_focal_crossentropy", t, p
    if case == "bce_smoothing":
        return (
            losses.BinaryCrossentropy,
            {"label_smoothing": 0.2},
            "binary_crossentropy",
            _binary(rng),
            rng.uniform(0.05, 0.95, (N, 3)),
        )
    if case == "bce_logits_smoothing":
        return (
            losses.BinaryCrossentropy,
            {"label_smoothing": 0.3, "from_logits": True},
            "binary_crossentropy",
            _binary(rng),
            rng.uniform(-3, 3, (N, 3)),
        )
    if case == "cce_smoothing":
        return (
            losses.CategoricalCrossentropy,
            {"label_smoothing": 0.1},
            "categorical_crossentropy",
            np.eye(4)[rng.integers(0, 4, N)],
            rng.dirichlet(np.ones(4), N),
        )
    if case == "cce_logits_smoothing":
        return (
            losses.CategoricalCrossentropy,
            {"label_smoothing": 0.25, "from_logits": True},
            "categorical_crossentropy",
            np.eye(4)[rng.integers(0, 4, N)],
            2 * rng.standard_normal((N, 4)),
        )
    if case == "mape":
        t = rng.uniform(0.5, 2.0, (N, 3)) * np.where(rng.random((N, 3)) < 0.5, -1, 1)
        p = t + rng.uniform(0.2, 1.0, (N, 3)) * np.where(rng.random((N, 3)) < 0.5, -1, 1)
        return losses.MeanAbsolutePercentageError, {}, "mean_absolute_percentage_error", t, p
    if case == "msle":
        return (
            losses.MeanSquaredLogarithmicError,
            {},
            "mean_squared_logarithmic_error",
            rng.uniform(0, 3, (N, 3)),
            rng.uniform(0.1, 3, (N, 3)),
        )
    if case.startswith("huber"):
        delta = {"huber": 1.0, "huber_delta0.5": 0.5, "huber_delta2.5": 2.5}[case]
        t = rng.standard_normal((N, 4))
        e = rng.uniform(0.1, 3 * delta, (N, 4)) * np.where(rng.random((N, 4)) < 0.5, -1, 1)
        e = np.where(np.abs(np.abs(e) - delta) < 0.05, e * 1.2, e)  # away from the kink
        return losses.Huber, ({} if case == "huber" else {"delta": delta}), "huber", t, t + e
    if case == "logcosh":
        t = rng.standard_normal((N, 3))
        return losses.LogCosh, {}, "log_cosh", t, t + 3 * rng.standard_normal((N, 3))
    if case in ("squared_hinge_01", "squared_hinge_pm1"):
        t = _binary(rng)
        if case.endswith("pm1"):
            t = 2 * t - 1
        y = np.where(np.all((t == 0) | (t == 1)), 2 * t - 1, t)
        p = rng.standard_normal((N, 3))
        m = 1 - y * p
        p = np.where(np.abs(m) < 0.05, p + 0.2, p)
        return losses.SquaredHinge, {}, "squared_hinge", t, p
    if case == "categorical_hinge":
        t = np.eye(4)[rng.integers(0, 4, N)]
        p = rng.uniform(0, 1, (N, 4))
        return losses.CategoricalHinge, {}, "categorical_hinge", t, p
    if case == "kld":
        return losses.KLDivergence, {}, "kl_divergence", rng.dirichlet(np.ones(4), N), rng.dirichlet(np.ones(4), N)
    if case == "poisson":
        return losses.Poisson, {}, "poisson", rng.poisson(2.0, (N, 3)).astype(np.float64), rng.uniform(0.2, 4, (N, 3))
    raise AssertionError(case)


CASES = [
    "focal",
    "focal_gamma0",
    "focal_gamma3.5",
    "focal_balanced",
    "focal_balanced_alpha",
    "focal_alpha_ignored_unbalanced",
    "focal_logits",
    "focal_logits_balanced_smooth",
    "focal_smoothing",
    "bce_smoothing",
    "bce_logits_smoothing",
    "cce_smoothing",
    "cce_logits_smoothing",
    "mape",
    "msle",
    "huber",
    "huber_delta0.5",
    "huber_delta2.5",
    "logcosh",
    "squared_hinge_01",
    "squared_hinge_pm1",
    "categorical_hinge",
    "kld",
    "poisson",
]


def _case(case, rng):
    cls, kw, name, t, p = _make(case, rng)
    return cls, kw, name, t.astype(np.float32), p.astype(np.float32)


def _weights(rng):
    w = rng.uniform(0.0, 3.0, N).astype(np.float32)
    w[2] = 0.0
    return w


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", CASES)
def test_loss_class_value_matches_keras_formula(rng, case, weighted):
    cls, kw, name, t, p = _case(case, rng)
    w = _weights(rng) if weighted else None
    loss = cls(**kw)
    assert loss.core_name == name
    expected = np_reduce(np_per_sample(name, t, p, **kw), w, "sum_over_batch_size")
    assert loss(t, p, sample_weight=w) == pytest.approx(expected, rel=2e-6, abs=1e-7)
    # The core with the same spec gives the same value.
    spec = _core.LossSpec(name, **{k: v for k, v in kw.items()})
    value, _, per = _core.loss_compute(spec, t, p, w)
    assert value == pytest.approx(expected, rel=2e-6, abs=1e-7)
    np.testing.assert_allclose(per, np_per_sample(name, t, p, **kw), rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("case", CASES)
def test_loss_gradient_matches_finite_differences(rng, case):
    cls, kw, name, t, p = _case(case, rng)
    w = _weights(rng)
    _, grad, _ = cls(**kw)._compute(t, p, w)
    expected = np_fd_grad(name, t, p, w, kw)
    assert grad.shape == p.shape
    assert np.max(np.abs(expected)) > 1e-3
    np.testing.assert_allclose(grad, expected, rtol=2e-4, atol=2e-6, err_msg=case)
    np.testing.assert_array_equal(grad[2], 0.0)  # the zero-weight row


# -- anchors that pin the formulas independently of the NumPy transcription above ---------------------
def test_focal_keras_docstring_example():
    # keras.losses.binary_focal_crossentropy docstring: [[0, 1], [0, 0]] vs [[0.6, 0.4], [0.4, 0.6]], gamma=2
    per = losses.binary_focal_crossentropy(
        np.array([[0, 1], [0, 0]], np.float32), np.array([[0.6, 0.4], [0.4, 0.6]], np.float32)
    )
    np.testing.assert_allclose(per, [0.330, 0.206], atol=1e-3)


def test_focal_gamma0_equals_bce_and_balancing_weights_classes(rng):
    t = (rng.random((N, 2)) < 0.5).astype(np.float32)
    p = rng.uniform(0.05, 0.95, (N, 2)).astype(np.float32)
    bce = losses.BinaryCrossentropy()(t, p)
    assert losses.BinaryFocalCrossentropy(gamma=0.0)(t, p) == pytest.approx(bce, rel=1e-6)
    # With gamma=0 and balancing, positives weigh alpha and negatives 1 - alpha.
    per_pos = losses.BinaryFocalCrossentropy(gamma=0.0, apply_class_balancing=True, alpha=1.0, reduction=None)(t, p)
    assert per_pos.shape == (N,)
    np.testing.assert_allclose(per_pos, (t * _bce_prob(t, p)).mean(-1), rtol=1e-5, atol=1e-7)
    # The focal factor shrinks confident, correct predictions more than wrong ones.
    easy = losses.BinaryFocalCrossentropy()(np.array([[1.0]]), np.array([[0.9]]))
    hard = losses.BinaryFocalCrossentropy()(np.array([[1.0]]), np.array([[0.1]]))
    assert easy == pytest.approx(0.1**2 * -math.log(0.9), rel=1e-5)
    assert hard == pytest.approx(0.9**2 * -math.log(0.1), rel=1e-5)


def test_label_smoothing_moves_targets_towards_half_and_uniform():
    # bce: t=1 with s=0.2 is t=0.9
    p = np.array([[0.7]], np.float32)
    assert losses.BinaryCrossentropy(label_smoothing=0.2)(np.array([[1.0]]), p) == pytest.approx(
        -(0.9 * math.log(0.7) + 0.1 * math.log(0.3)), rel=1e-6
    )
    # cce: one-hot over 4 classes with s=0.2 is [0.85, 0.05, 0.05, 0.05]
    q = np.array([[0.4, 0.3, 0.2, 0.1]], np.float32)
    want = -(0.85 * math.log(0.4) + 0.05 * (math.log(0.3) + math.log(0.2) + math.log(0.1)))
    assert losses.CategoricalCrossentropy(label_smoothing=0.2)(np.array([[1, 0, 0, 0]]), q) == pytest.approx(
        want, rel=1e-6
    )


def test_huber_regimes_and_logcosh_stability():
    t = np.zeros((1, 4), np.float32)
    p = np.array([[0.5, -0.5, 3.0, -4.0]], np.float32)
    # delta = 1: 0.5 e^2 inside, |e| - 0.5 outside
    assert losses.Huber()(t, p) == pytest.approx((0.125 + 0.125 + 2.5 + 3.5) / 4, rel=1e-6)
    assert losses.Huber(delta=2.0)(t, p) == pytest.approx((0.125 + 0.125 + (6 - 2) + (8 - 2)) / 4, rel=1e-6)
    # log(cosh(x)) for large |x| is |x| - log 2, finite (naive cosh overflows in float32 at ~89).
    big = np.array([[100.0, -200.0]], np.float32)
    v = losses.LogCosh()(np.zeros((1, 2), np.float32), big)
    assert math.isfinite(v)
    assert v == pytest.approx((100 - math.log(2) + 200 - math.log(2)) / 2, rel=1e-6)


def test_mape_with_zero_target_divides_by_epsilon_and_msle_clips_negatives():
    t = np.array([[0.0, 2.0]], np.float32)
    p = np.array([[1e-6, 1.0]], np.float32)
    v = losses.MeanAbsolutePercentageError()(t, p)
    assert v == pytest.approx(100 * (1e-6 / 1e-7 + 0.5) / 2, rel=1e-5)
    # msle: log(max(p, eps) + 1): a negative prediction counts as ~0
    t2 = np.array([[1.0, 0.5]], np.float32)
    p2 = np.array([[-3.0, 0.5]], np.float32)
    assert losses.MeanSquaredLogarithmicError()(t2, p2) == pytest.approx(
        ((math.log(1 + 1e-7) - math.log(2)) ** 2 + 0) / 2, rel=1e-5
    )


def test_kld_clips_zero_targets_and_categorical_hinge_margin():
    t = np.array([[0.0, 1.0, 0.0]], np.float32)
    p = np.array([[0.2, 0.5, 0.3]], np.float32)
    want = 1e-7 * math.log(1e-7 / 0.2) + math.log(1 / 0.5) + 1e-7 * math.log(1e-7 / 0.3)
    assert losses.KLDivergence()(t, p) == pytest.approx(want, rel=1e-5)
    # categorical hinge: max(neg - pos + 1, 0) = max(0.3 - 0.5 + 1, 0) = 0.8
    assert losses.CategoricalHinge()(t, p) == pytest.approx(0.8, rel=1e-6)
    assert losses.CategoricalHinge()(t, np.array([[0.0, 2.0, 0.5]], np.float32)) == 0.0


def test_poisson_and_squared_hinge_values():
    assert losses.Poisson()(np.array([[2.0, 0.0]]), np.array([[1.5, 0.5]])) == pytest.approx(
        ((1.5 - 2 * math.log(1.5 + 1e-7)) + 0.5) / 2, rel=1e-6
    )
    # {0, 1} labels map to {-1, 1}: margins 1 - y p = [1 - 0.3, 1 + 0.5] for y = [1, -1], p = [0.3, 0.5]
    assert losses.SquaredHinge()(np.array([[1.0, 0.0]]), np.array([[0.3, 0.5]])) == pytest.approx(
        (0.7**2 + 1.5**2) / 2, rel=1e-6
    )


# -- reductions --------------------------------------------------------------------------------
REDUCTION_CASES = ["focal_balanced", "huber_delta0.5", "mape", "kld", "cce_logits_smoothing", "poisson"]


@pytest.mark.parametrize("reduction", ["sum", "sum_over_batch_size", "mean", "mean_with_sample_weight", None, "none"])
@pytest.mark.parametrize("case", REDUCTION_CASES)
def test_reductions_with_sample_weights(rng, case, reduction):
    cls, kw, name, t, p = _case(case, rng)
    w = _weights(rng)
    per = np_per_sample(name, t, p, **kw)
    loss = cls(reduction=reduction, **kw)
    got = loss(t, p, sample_weight=w)
    want = np_reduce(per, w, reduction)
    if reduction in (None, "none"):
        assert isinstance(got, np.ndarray) and got.shape == (N,)
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)
        assert got[2] == 0.0
        np.testing.assert_allclose(loss(t, p), per, rtol=2e-6, atol=1e-7)  # unweighted: per-sample values
    else:
        assert isinstance(got, float)
        assert got == pytest.approx(want, rel=2e-6, abs=1e-7)
        # without weights every reduction except sum is the plain mean
        unweighted = loss(t, p)
        assert unweighted == pytest.approx(per.sum() if reduction == "sum" else per.mean(), rel=2e-6)


@pytest.mark.parametrize("reduction", ["sum", "sum_over_batch_size", "mean_with_sample_weight"])
def test_core_reduction_scales_value_and_gradient(rng, reduction):
    cls, kw, name, t, p = _case("huber", rng)
    w = _weights(rng)
    value, grad, per = _core.loss_compute(_core.LossSpec(name, reduction=reduction), t, p, w)
    assert value == pytest.approx(np_reduce(np_per_sample(name, t, p), w, reduction), rel=2e-6)
    np.testing.assert_allclose(grad, np_fd_grad(name, t, p, w, {}, reduction), rtol=2e-4, atol=2e-6)


def test_reductions_are_distinct_for_these_weights(rng):
    cls, kw, name, t, p = _case("poisson", rng)
    w = _weights(rng)
    vals = [cls(reduction=r)(t, p, w) for r in ("sum", "sum_over_batch_size", "mean_with_sample_weight")]
    assert len({round(v, 6) for v in vals}) == 3


def test_mean_with_sample_weight_all_zero_weights_is_zero(rng):
    cls, kw, name, t, p = _case("huber", rng)
    v = losses.Huber(reduction="mean_with_sample_weight")(t, p, np.zeros(N, np.float32))
    assert v == 0.0  # Keras: divide_no_nan


def test_compile_rejects_unreduced_loss():
    import maasfin as mf

    m = mf.Sequential([mf.layers.Dense(1, input_dim=2)])
    with pytest.raises(ValueError):
        m.compile(optimizer="sgd", loss=losses.Huber(reduction=None))


# -- loss functions and names ----------------------------------------------------------------------
FUNCTIONS = [
    ("binary_focal_crossentropy", "focal"),
    ("huber", "huber"),
    ("log_cosh", "logcosh"),
    ("mean_absolute_percentage_error", "mape"),
    ("mean_squared_logarithmic_error", "msle"),
    ("squared_hinge", "squared_hinge_01"),
    ("categorical_hinge", "categorical_hinge"),
    ("kl_divergence", "kld"),
    ("poisson", "poisson"),
]


@pytest.mark.parametrize("fn_name,case", FUNCTIONS, ids=[f[0] for f in FUNCTIONS])
def test_loss_functions_return_one_value_per_sample(rng, fn_name, case):
    cls, _, name, t, p = _case(case, rng)  # the functions use the default arguments
    fn = getattr(losses, fn_name)
    per = fn(t, p)
    assert isinstance(per, np.ndarray) and per.shape == (N,)
    np.testing.assert_allclose(per, np_per_sample(name, t, p), rtol=2e-6, atol=1e-7)
    assert float(np.mean(per)) == pytest.approx(cls()(t, p), rel=1e-6)


@pytest.mark.parametrize(
    "identifier,cls",
    [
        ("kld", losses.KLDivergence),
        ("KLD", losses.KLDivergence),
        ("kl_divergence", losses.KLDivergence),
        ("KLDivergence", losses.KLDivergence),
        ("logcosh", losses.LogCosh),
        ("log_cosh", losses.LogCosh),
        ("LogCosh", losses.LogCosh),
        ("huber", losses.Huber),
        ("Huber", losses.Huber),
        ("mape", losses.MeanAbsolutePercentageError),
        ("MAPE", losses.MeanAbsolutePercentageError),
        ("mean_absolute_percentage_error", losses.MeanAbsolutePercentageError),
        ("msle", losses.MeanSquaredLogarithmicError),
        ("MSLE", losses.MeanSquaredLogarithmicError),
        ("mean_squared_logarithmic_error", losses.MeanSquaredLogarithmicError),
        ("MSE", losses.MeanSquaredError),
        ("MAE", losses.MeanAbsoluteError),
        ("BCE", losses.BinaryCrossentropy),
        ("binary_focal_crossentropy", losses.BinaryFocalCrossentropy),
        ("BinaryFocalCrossentropy", losses.BinaryFocalCrossentropy),
        ("squared_hinge", losses.SquaredHinge),
        ("categorical_hinge", losses.CategoricalHinge),
        ("poisson", losses.Poisson),
        ("Poisson", losses.Poisson),
    ],
)
def test_get_resolves_names_and_keras_aliases(identifier, cls):
    assert type(losses.get(identifier)) is cls


def test_get_resolves_new_loss_functions():
    assert type(losses.get(losses.huber)) is losses.Huber
    assert type(losses.get(losses.kl_divergence)) is losses.KLDivergence
    assert type(losses.get(losses.binary_focal_crossentropy)) is losses.BinaryFocalCrossentropy


@pytest.mark.parametrize(
    "cls,kw",
    [
        (
            losses.BinaryFocalCrossentropy,
            dict(apply_class_balancing=True, alpha=0.4, gamma=1.0, from_logits=True, label_smoothing=0.1),
        ),
        (losses.Huber, dict(delta=0.3)),
        (losses.CategoricalCrossentropy, dict(label_smoothing=0.2)),
        (losses.KLDivergence, {}),
        (losses.MeanAbsolutePercentageError, dict(reduction="sum")),
    ],
)
def test_loss_config_round_trip(rng, cls, kw):
    loss = cls(**kw)
    cfg = loss.get_config()
    for k, v in kw.items():
        assert cfg[k] == v
    again = cls.from_config(cfg)
    assert again.get_config() == cfg
    t = rng.uniform(0.1, 0.9, (4, 3)).astype(np.float32)
    p = rng.uniform(0.1, 0.9, (4, 3)).astype(np.float32)
    assert again(t, p) == loss(t, p)


@pytest.mark.parametrize(
    "make",
    [
        lambda: losses.BinaryFocalCrossentropy(label_smoothing=-0.1),
        lambda: losses.CategoricalCrossentropy(label_smoothing=2.0),
        lambda: losses.Huber(delta=-1.0),
        lambda: losses.LogCosh(reduction="median"),
    ],
)
def test_invalid_arguments_raise(make):
    with pytest.raises(ValueError):
        make()
