"""Optimizers AdamW, Adagrad, Adamax and Nadam, weight decay, gradient clipping, learning-rate
schedules and optimizer state, against float64 NumPy transcriptions of Keras 3
(keras/src/optimizers/{base_optimizer,adamw,adagrad,adamax,nadam}.py and schedules/).

Keras 3's step order (BaseOptimizer._backend_apply_gradients): clip the gradients, then apply the
decoupled weight decay `p -= p * wd * lr` with lr = learning_rate(iterations) (before the
increment), then the update rule with the same lr, then iterations += 1.

Learning rates of 0.05-0.2 make five steps move the parameters by O(0.1-1), so float32 rounding
in the core (~1e-7 relative per step) is far below the 1e-5 tolerance while a wrong rule (bias
correction, epsilon placement, decay order, clipping scope) is off by far more; the
`test_reference_variants_are_distinguishable` test checks that claim on the NumPy side.
"""

import math

import numpy as np
import pytest

import maasfin as mf
from maasfin import _core, optimizers
from maasfin.optimizers import schedules

N_PARAMS = 32
SCALES = [1.0, 3.0, 0.1, 0.5, 0.02, 2.0]
RTOL, ATOL = 1e-5, 1e-6


def _grads(rng, n=N_PARAMS, steps=len(SCALES)):
    return [(s * rng.standard_normal(n)).astype(np.float32) for s in SCALES[:steps]]


# -- NumPy references (float64) ------------------------------------------------------------------
class NpBase:
    """Clipping, decoupled weight decay and the learning rate of Keras 3's BaseOptimizer."""

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None):
        self.lr, self.wd = learning_rate, weight_decay
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.iterations = 0

    def current_lr(self):
        return self.lr(self.iterations) if callable(self.lr) else self.lr

    def clip(self, g):
        if self.clipnorm:
            return g * self.clipnorm / max(np.sqrt(np.sum(g * g)), self.clipnorm)
        if self.global_clipnorm:
            return g * self.global_clipnorm / max(np.sqrt(np.sum(g * g)), self.global_clipnorm)
        if self.clipvalue:
            return np.clip(g, -self.clipvalue, self.clipvalue)
        return g

    def step(self, p, g):
        g = self.clip(np.asarray(g, np.float64))
        lr = self.current_lr()
        if self.wd:
            p = p - p * self.wd * lr
        p = self.update(p, g, lr)
        self.iterations += 1
        return p


class NpSGD(NpBase):
    def update(self, p, g, lr):
        return p - lr * g


class NpAdam(NpBase):
    def __init__(self, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kw):
        super().__init__(learning_rate, **kw)
        self.b1, self.b2, self.eps = beta_1, beta_2, epsilon
        self.m = self.v = None

    def update(self, p, g, lr):
        if self.m is None:
            self.m, self.v = np.zeros_like(p), np.zeros_like(p)
        t = self.iterations + 1
        alpha = lr * math.sqrt(1 - self.b2**t) / (1 - self.b1**t)
        self.m += (g - self.m) * (1 - self.b1)
        self.v += (g * g - self.v) * (1 - self.b2)
        return p - alpha * self.m / (np.sqrt(self.v) + self.eps)


class NpAdamW(NpAdam):
    def __init__(self, learning_rate, weight_decay=0.004, **kw):
        super().__init__(learning_rate, weight_decay=weight_decay, **kw)


class NpAdagrad(NpBase):
    def __init__(self, learning_rate, initial_accumulator_value=0.1, epsilon=1e-7, **kw):
        super().__init__(learning_rate, **kw)
        self.init, self.eps = initial_accumulator_value, epsilon
        self.acc = None

    def update(self, p, g, lr):
        if self.acc is None:
            self.acc = np.full_like(p, self.init)
        self.acc += g * g
        return p - lr * g / np.sqrt(self.acc + self.eps)


class NpAdamax(NpBase):
    def __init__(self, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kw):
        super().__init__(learning_rate, **kw)
        self.b1, self.b2, self.eps = beta_1, beta_2, epsilon
        self.m = self.u = None

    def update(self, p, g, lr):
        if self.m is None:
            self.m, self.u = np.zeros_like(p), np.zeros_like(p)
        t = self.iterations + 1
        self.m += (g - self.m) * (1 - self.b1)
        self.u = np.maximum(self.b2 * self.u, np.abs(g))
        return p - lr * self.m / ((1 - self.b1**t) * (self.u + self.eps))


class NpNadam(NpBase):
    def __init__(self, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kw):
        super().__init__(learning_rate, **kw)
        self.b1, self.b2, self.eps = beta_1, beta_2, epsilon
        self.m = self.v = None
        self.u_product = 1.0

    def update(self, p, g, lr):
        if self.m is None:
            self.m, self.v = np.zeros_like(p), np.zeros_like(p)
        t = self.iterations + 1
        u_t = self.b1 * (1 - 0.5 * 0.96**t)
        u_t1 = self.b1 * (1 - 0.5 * 0.96 ** (t + 1))
        self.u_product *= u_t
        u_prod_t1 = self.u_product * u_t1
        self.m += (g - self.m) * (1 - self.b1)
        self.v += (g * g - self.v) * (1 - self.b2)
        m_hat = u_t1 * self.m / (1 - u_prod_t1) + (1 - u_t) * g / (1 - self.u_product)
        v_hat = self.v / (1 - self.b2**t)
        return p - lr * m_hat / (np.sqrt(v_hat) + self.eps)


def _run_numpy(ref, p0, grads):
    p = p0.astype(np.float64)
    out = []
    for g in grads:
        p = ref.step(p, g)
        out.append(p.copy())
    return out


def _run_core(py_opt, p0, grads):
    core = py_opt._bind()
    params = p0.copy()
    out = []
    for t, g in enumerate(grads, start=1):
        _core.optimizer_step(core, params, g)
        assert py_opt.iterations == t
        out.append(params.copy())
    return out


CASES = {
    "adamw_default_wd": (lambda: optimizers.AdamW(learning_rate=0.1), lambda: NpAdamW(0.1)),
    "adamw_wd_0.1": (
        lambda: optimizers.AdamW(learning_rate=0.1, weight_decay=0.1, beta_1=0.8, beta_2=0.95),
        lambda: NpAdamW(0.1, weight_decay=0.1, beta_1=0.8, beta_2=0.95),
    ),
    "adagrad_default_acc": (lambda: optimizers.Adagrad(learning_rate=0.1), lambda: NpAdagrad(0.1)),
    "adagrad_acc_0.5_eps": (
        lambda: optimizers.Adagrad(learning_rate=0.2, initial_accumulator_value=0.5, epsilon=0.3),
        lambda: NpAdagrad(0.2, initial_accumulator_value=0.5, epsilon=0.3),
    ),
    "adagrad_acc_0": (
        lambda: optimizers.Adagrad(learning_rate=0.05, initial_accumulator_value=0.0),
        lambda: NpAdagrad(0.05, initial_accumulator_value=0.0),
    ),
    "adamax": (lambda: optimizers.Adamax(learning_rate=0.1), lambda: NpAdamax(0.1)),
    "adamax_betas": (
        lambda: optimizers.Adamax(learning_rate=0.1, beta_1=0.5, beta_2=0.6, epsilon=0.01),
        lambda: NpAdamax(0.1, beta_1=0.5, beta_2=0.6, epsilon=0.01),
    ),
    "nadam": (lambda: optimizers.Nadam(learning_rate=0.1), lambda: NpNadam(0.1)),
    "nadam_betas": (
        lambda: optimizers.Nadam(learning_rate=0.1, beta_1=0.7, beta_2=0.9, epsilon=1e-3),
        lambda: NpNadam(0.1, beta_1=0.7, beta_2=0.9, epsilon=1e-3),
    ),
    "sgd_weight_decay": (
        lambda: optimizers.SGD(learning_rate=0.1, weight_decay=0.5),
        lambda: NpSGD(0.1, weight_decay=0.5),
    ),
    "adam_weight_decay": (
        lambda: optimizers.Adam(learning_rate=0.1, weight_decay=0.2),
        lambda: NpAdam(0.1, weight_decay=0.2),
    ),
    "sgd_clipnorm": (lambda: optimizers.SGD(learning_rate=0.1, clipnorm=1.5), lambda: NpSGD(0.1, clipnorm=1.5)),
    "sgd_clipvalue": (lambda: optimizers.SGD(learning_rate=0.1, clipvalue=0.4), lambda: NpSGD(0.1, clipvalue=0.4)),
    "sgd_global_clipnorm": (
        lambda: optimizers.SGD(learning_rate=0.1, global_clipnorm=2.0),
        lambda: NpSGD(0.1, global_clipnorm=2.0),
    ),
    "adam_clipnorm_wd": (
        lambda: optimizers.Adam(learning_rate=0.1, clipnorm=0.7, weight_decay=0.3),
        lambda: NpAdam(0.1, clipnorm=0.7, weight_decay=0.3),
    ),
    "adamw_clipvalue": (
        lambda: optimizers.AdamW(learning_rate=0.1, weight_decay=0.05, clipvalue=0.2),
        lambda: NpAdamW(0.1, weight_decay=0.05, clipvalue=0.2),
    ),
    "adagrad_wd_global_clip": (
        lambda: optimizers.Adagrad(learning_rate=0.1, weight_decay=0.1, global_clipnorm=1.0),
        lambda: NpAdagrad(0.1, weight_decay=0.1, global_clipnorm=1.0),
    ),
    "nadam_clipnorm": (lambda: optimizers.Nadam(learning_rate=0.1, clipnorm=0.5), lambda: NpNadam(0.1, clipnorm=0.5)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_update_rule_matches_keras_numpy(rng, case):
    make_py, make_np = CASES[case]
    p0 = rng.standard_normal(N_PARAMS).astype(np.float32)
    grads = _grads(rng)
    expected = _run_numpy(make_np(), p0, grads)
    got = _run_core(make_py(), p0, grads)
    for t, (e, g) in enumerate(zip(expected, got), start=1):
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL, err_msg=f"{case} after step {t}")
    assert np.max(np.abs(got[-1] - p0)) > 0.05  # the parameters really moved


def _final(ref, p0, grads):
    return _run_numpy(ref, p0, grads)[-1]


@pytest.mark.parametrize(
    "a,b",
    [
        (lambda: NpAdamW(0.1), lambda: NpAdam(0.1)),  # default decay matters
        (lambda: NpAdagrad(0.1), lambda: NpAdagrad(0.1, initial_accumulator_value=0.0)),
        (lambda: NpAdamax(0.1), lambda: NpAdam(0.1)),
        (lambda: NpNadam(0.1), lambda: NpAdam(0.1)),
        (lambda: NpSGD(0.1, weight_decay=0.5), lambda: NpSGD(0.1)),
        (lambda: NpSGD(0.1, clipnorm=1.5), lambda: NpSGD(0.1)),
        (lambda: NpSGD(0.1, clipvalue=0.4), lambda: NpSGD(0.1)),
        (lambda: NpSGD(0.1, global_clipnorm=2.0), lambda: NpSGD(0.1)),
    ],
    ids=[
        "adamw_vs_adam",
        "adagrad_init",
        "adamax_vs_adam",
        "nadam_vs_adam",
        "sgd_wd",
        "clipnorm",
        "clipvalue",
        "global_clipnorm",
    ],
)
def test_reference_variants_are_distinguishable(rng, a, b):
    p0 = rng.standard_normal(N_PARAMS).astype(np.float32)
    grads = _grads(rng)
    assert np.max(np.abs(_final(a(), p0, grads) - _final(b(), p0, grads))) > 100 * (ATOL + RTOL)


def test_sgd_weight_decay_applied_before_update_not_after(rng):
    """Decay uses the parameters before the update: p' = update(p - p*wd*lr), not update(p) - ..."""
    p0 = rng.standard_normal(N_PARAMS).astype(np.float32)
    g = [(5 * rng.standard_normal(N_PARAMS)).astype(np.float32)]
    py = optimizers.SGD(learning_rate=0.2, weight_decay=0.5)
    got = _run_core(py, p0, g)[-1]
    before = p0 - p0 * 0.5 * 0.2 - 0.2 * g[0]
    np.testing.assert_allclose(got, before, rtol=1e-6, atol=1e-7)


def test_adamw_default_weight_decay_and_keras_defaults():
    cfg = optimizers.AdamW().get_config()
    assert cfg["weight_decay"] == pytest.approx(0.004)
    assert (cfg["learning_rate"], cfg["beta_1"], cfg["beta_2"], cfg["epsilon"]) == (0.001, 0.9, 0.999, 1e-7)
    ada = optimizers.Adagrad().get_config()
    assert (ada["learning_rate"], ada["initial_accumulator_value"], ada["epsilon"]) == (0.001, 0.1, 1e-7)
    for cls in (optimizers.Adamax, optimizers.Nadam):
        c = cls().get_config()
        assert (c["learning_rate"], c["beta_1"], c["beta_2"], c["epsilon"]) == (0.001, 0.9, 0.999, 1e-7)


@pytest.mark.parametrize(
    "name,cls",
    [
        ("adamw", optimizers.AdamW),
        ("AdamW", optimizers.AdamW),
        ("adagrad", optimizers.Adagrad),
        ("adamax", optimizers.Adamax),
        ("Nadam", optimizers.Nadam),
        ("nadam", optimizers.Nadam),
    ],
)
def test_get_resolves_new_optimizers(name, cls):
    assert type(optimizers.get(name)) is cls


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(clipnorm=1.0, clipvalue=0.5),
        dict(clipnorm=1.0, global_clipnorm=1.0),
        dict(clipvalue=0.5, global_clipnorm=2.0),
        dict(clipnorm=1.0, clipvalue=1.0, global_clipnorm=1.0),
    ],
)
@pytest.mark.parametrize("cls", [optimizers.SGD, optimizers.Adam, optimizers.AdamW, optimizers.Nadam])
def test_two_clipping_options_raise(cls, kwargs):
    with pytest.raises(ValueError):
        cls(**kwargs)


@pytest.mark.parametrize(
    "kwargs", [dict(clipnorm=-1.0), dict(clipvalue=0.0), dict(global_clipnorm=-2.0), dict(weight_decay=-0.1)]
)
def test_invalid_clipping_or_decay_raise(kwargs):
    with pytest.raises(ValueError):
        optimizers.Adam(**kwargs)


# -- clipnorm per variable vs global_clipnorm over all variables, inside fit ----------------------
def _two_variable_model(rng, optimizer):
    model = mf.Sequential([mf.layers.Dense(3, input_dim=4)])
    model.compile(optimizer=optimizer, loss="mse")
    model.build()
    kernel = (2 * rng.standard_normal((4, 3))).astype(np.float32)
    bias = (2 * rng.standard_normal(3)).astype(np.float32)
    model.set_weights([kernel, bias])
    return model


@pytest.mark.parametrize("mode", ["clipnorm", "global_clipnorm", "clipvalue", "none"])
def test_clipping_in_fit_is_per_variable_or_global(rng, mode):
    x = rng.standard_normal((16, 4)).astype(np.float32)
    y = (5 * rng.standard_normal((16, 3))).astype(np.float32)
    kw = {} if mode == "none" else {mode: {"clipnorm": 0.5, "global_clipnorm": 0.5, "clipvalue": 0.05}[mode]}
    lr = 0.1
    model = _two_variable_model(rng, optimizers.SGD(learning_rate=lr, **kw))
    w0 = model.get_weights()
    # Analytic gradients of the batch loss (one batch = the whole data) per variable.
    trainer = model._get_trainer(y.shape)
    trainer.compute_gradients([x], y, None, False, 0)
    specs = model.layers[0]._param_specs()
    grads = [model._graph.grads[off : off + int(np.prod(s))].reshape(s).astype(np.float64) for _, s, off in specs]
    norms = [np.sqrt(np.sum(g * g)) for g in grads]
    gnorm = np.sqrt(sum(n * n for n in norms))
    assert min(norms) > 0.6 and gnorm > 0.6  # every clipping option is active for this data
    if mode == "clipnorm":
        clipped = [g * 0.5 / max(n, 0.5) for g, n in zip(grads, norms)]
    elif mode == "global_clipnorm":
        clipped = [g * 0.5 / max(gnorm, 0.5) for g in grads]
    elif mode == "clipvalue":
        clipped = [np.clip(g, -0.05, 0.05) for g in grads]
    else:
        clipped = grads
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for w_before, w_after, g, (name, _, _) in zip(w0, model.get_weights(), clipped, specs):
        np.testing.assert_allclose(w_after, w_before - lr * g, rtol=1e-5, atol=1e-6, err_msg=f"{mode} {name}")


# -- schedules ---------------------------------------------------------------------------------
def np_exponential(step, init, decay_steps, rate, staircase=False):
    p = step / decay_steps
    if staircase:
        p = math.floor(p)
    return init * rate**p


def np_inverse_time(step, init, decay_steps, rate, staircase=False):
    p = step / decay_steps
    if staircase:
        p = math.floor(p)
    return init / (1 + rate * p)


def np_piecewise(step, boundaries, values):
    if step <= boundaries[0]:
        return values[0]
    if step > boundaries[-1]:
        return values[-1]
    for low, high, v in zip(boundaries[:-1], boundaries[1:], values[1:-1]):
        if low < step <= high:
            return v
    raise AssertionError


def np_cosine(step, init, decay_steps, alpha=0.0, warmup_target=None, warmup_steps=0):
    def decay(s, peak):
        frac = s / decay_steps
        return peak * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * frac)) + alpha)

    if warmup_target is None:
        return decay(min(step, decay_steps), init)
    s = min(step, decay_steps + warmup_steps)
    if s < warmup_steps:
        return (warmup_target - init) * s / warmup_steps + init
    return decay(s - warmup_steps, warmup_target)


def np_polynomial(step, init, decay_steps, end=1e-4, power=1.0, cycle=False):
    if cycle:
        mult = 1.0 if step == 0 else math.ceil(step / decay_steps)
        ds = decay_steps * mult
        s = step
    else:
        ds = decay_steps
        s = min(step, decay_steps)
    return (init - end) * (1 - s / ds) ** power + end


STEPS = [0, 1, 2, 3, 5, 7, 10, 10.5, 15, 19, 20, 21, 29, 30, 31, 50, 99, 100, 101, 150, 1000]

SCHEDULES = {
    "exponential": (lambda: schedules.ExponentialDecay(0.1, 10, 0.5), lambda s: np_exponential(s, 0.1, 10, 0.5)),
    "exponential_staircase": (
        lambda: schedules.ExponentialDecay(0.1, 10, 0.5, staircase=True),
        lambda s: np_exponential(s, 0.1, 10, 0.5, True),
    ),
    "exponential_credit": (
        lambda: schedules.ExponentialDecay(1e-3, 100, 0.96),
        lambda s: np_exponential(s, 1e-3, 100, 0.96),
    ),
    "inverse_time": (lambda: schedules.InverseTimeDecay(0.2, 5, 0.5), lambda s: np_inverse_time(s, 0.2, 5, 0.5)),
    "inverse_time_staircase": (
        lambda: schedules.InverseTimeDecay(0.2, 5, 0.5, staircase=True),
        lambda s: np_inverse_time(s, 0.2, 5, 0.5, True),
    ),
    "piecewise": (
        lambda: schedules.PiecewiseConstantDecay([10, 20, 30], [1.0, 0.5, 0.25, 0.1]),
        lambda s: np_piecewise(s, [10, 20, 30], [1.0, 0.5, 0.25, 0.1]),
    ),
    "piecewise_one_boundary": (
        lambda: schedules.PiecewiseConstantDecay([3], [0.3, 0.03]),
        lambda s: np_piecewise(s, [3], [0.3, 0.03]),
    ),
    "cosine": (lambda: schedules.CosineDecay(0.1, 100), lambda s: np_cosine(s, 0.1, 100)),
    "cosine_alpha": (lambda: schedules.CosineDecay(0.1, 50, alpha=0.2), lambda s: np_cosine(s, 0.1, 50, alpha=0.2)),
    "cosine_warmup": (
        lambda: schedules.CosineDecay(0.0, 100, warmup_target=0.1, warmup_steps=10),
        lambda s: np_cosine(s, 0.0, 100, warmup_target=0.1, warmup_steps=10),
    ),
    "cosine_warmup_alpha_init": (
        lambda: schedules.CosineDecay(0.01, 40, alpha=0.1, warmup_target=0.2, warmup_steps=20),
        lambda s: np_cosine(s, 0.01, 40, alpha=0.1, warmup_target=0.2, warmup_steps=20),
    ),
    "polynomial": (lambda: schedules.PolynomialDecay(0.1, 20), lambda s: np_polynomial(s, 0.1, 20)),
    "polynomial_power": (
        lambda: schedules.PolynomialDecay(0.1, 20, end_learning_rate=0.01, power=2.0),
        lambda s: np_polynomial(s, 0.1, 20, end=0.01, power=2.0),
    ),
    "polynomial_cycle": (
        lambda: schedules.PolynomialDecay(0.1, 10, end_learning_rate=0.01, power=2.0, cycle=True),
        lambda s: np_polynomial(s, 0.1, 10, end=0.01, power=2.0, cycle=True),
    ),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_matches_closed_form(name):
    make, ref = SCHEDULES[name]
    sched = make()
    got = np.array([sched(s) for s in STEPS])
    want = np.array([ref(s) for s in STEPS])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12, err_msg=name)
    assert len(set(np.round(want, 12))) >= 2  # the chosen steps exercise the decay


def test_piecewise_boundary_semantics():
    s = schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    assert [s(0), s(10), s(10.5), s(11), s(20), s(20.5), s(21)] == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.5, 0.1, 0.1])


def test_staircase_differs_from_smooth():
    smooth, stair = schedules.ExponentialDecay(0.1, 10, 0.5), schedules.ExponentialDecay(0.1, 10, 0.5, staircase=True)
    assert stair(9) == pytest.approx(0.1)
    assert smooth(9) == pytest.approx(0.1 * 0.5**0.9)
    assert stair(10) == pytest.approx(smooth(10)) == pytest.approx(0.05)


@pytest.mark.parametrize(
    "name",
    ["exponential_staircase", "piecewise_one_boundary", "cosine_warmup_alpha_init", "polynomial_cycle", "inverse_time"],
)
def test_optimizer_uses_schedule_at_each_step(rng, name):
    make, ref = SCHEDULES[name]
    # Rescale so that a few steps of plain SGD move the parameters visibly.
    sched = make()
    py = optimizers.SGD(learning_rate=sched)
    core = py._bind()
    p0 = rng.standard_normal(N_PARAMS).astype(np.float32)
    params = p0.copy()
    p_np = p0.astype(np.float64)
    lrs = []
    for t in range(25):
        assert py.learning_rate == pytest.approx(ref(t), rel=1e-6)  # the rate of the next step
        g = (3 * rng.standard_normal(N_PARAMS)).astype(np.float32)
        _core.optimizer_step(core, params, g)
        p_np = p_np - ref(t) * g.astype(np.float64)
        lrs.append(ref(t))
        assert py.iterations == t + 1
        np.testing.assert_allclose(params, p_np, rtol=1e-5, atol=1e-6, err_msg=f"{name} step {t + 1}")
    assert len(set(np.round(lrs, 12))) > 1


def test_adam_with_schedule_and_weight_decay_matches_keras(rng):
    sched_args = (0.2, 2, 0.5)
    py = optimizers.AdamW(learning_rate=schedules.ExponentialDecay(*sched_args), weight_decay=0.3, clipnorm=2.0)
    ref = NpAdamW(lambda s: np_exponential(s, *sched_args), weight_decay=0.3, clipnorm=2.0)
    p0 = rng.standard_normal(N_PARAMS).astype(np.float32)
    grads = _grads(rng)
    for t, (e, g) in enumerate(zip(_run_numpy(ref, p0, grads), _run_core(py, p0, grads)), start=1):
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL, err_msg=f"step {t}")
    assert py.learning_rate == pytest.approx(np_exponential(len(grads), *sched_args), rel=1e-6)


def test_learning_rate_of_scheduled_optimizer_cannot_be_set():
    py = optimizers.Adam(learning_rate=schedules.CosineDecay(0.1, 10))
    with pytest.raises(TypeError):
        py.learning_rate = 0.5
    py._bind()
    with pytest.raises(TypeError):
        py.learning_rate = 0.5
    assert py.learning_rate == pytest.approx(0.1)


def test_schedule_in_fit_reports_current_rate(rng):
    model = mf.Sequential([mf.layers.Dense(1, input_dim=3)])
    sched = schedules.ExponentialDecay(0.1, 3, 0.5, staircase=True)
    model.compile(optimizer=optimizers.SGD(learning_rate=sched), loss="mse")
    x = rng.standard_normal((20, 3)).astype(np.float32)
    y = rng.standard_normal((20, 1)).astype(np.float32)
    model.fit(x, y, batch_size=5, epochs=2, verbose=0)  # 8 steps
    assert model.optimizer.iterations == 8
    assert model.optimizer.learning_rate == pytest.approx(0.1 * 0.5**2)


def test_schedule_config_round_trip():
    for make, _ in SCHEDULES.values():
        s = make()
        again = type(s).from_config(s.get_config())
        assert again.get_config() == s.get_config()
        assert [again(t) for t in STEPS] == [s(t) for t in STEPS]
    opt = optimizers.Adam(learning_rate=schedules.PolynomialDecay(0.1, 10, cycle=True), clipvalue=0.3)
    again = optimizers.Adam.from_config(opt.get_config())
    assert again.get_config() == opt.get_config()
    assert isinstance(again._schedule, schedules.PolynomialDecay)


# -- optimizer state ------------------------------------------------------------------------------
STATE_CASES = {
    "sgd_momentum": lambda: optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True),
    "adam_amsgrad": lambda: optimizers.Adam(learning_rate=0.1, amsgrad=True),
    "adamw": lambda: optimizers.AdamW(learning_rate=0.1, weight_decay=0.1),
    "rmsprop_centered": lambda: optimizers.RMSprop(learning_rate=0.05, momentum=0.5, centered=True),
    "adagrad": lambda: optimizers.Adagrad(learning_rate=0.1),
    "adamax": lambda: optimizers.Adamax(learning_rate=0.1),
    "nadam": lambda: optimizers.Nadam(learning_rate=0.1),
    "nadam_schedule": lambda: optimizers.Nadam(learning_rate=schedules.ExponentialDecay(0.1, 2, 0.7)),
    "adam_schedule_clip": lambda: optimizers.Adam(
        learning_rate=schedules.PiecewiseConstantDecay([2, 4], [0.1, 0.05, 0.01]), global_clipnorm=1.0
    ),
}


@pytest.mark.parametrize("case", sorted(STATE_CASES))
def test_state_round_trip_continues_bit_identically(rng, case):
    make = STATE_CASES[case]
    p0 = rng.standard_normal(N_PARAMS).astype(np.float32)
    grads = _grads(rng) + _grads(rng)
    first = make()
    core = first._bind()
    p = p0.copy()
    for g in grads[:4]:
        _core.optimizer_step(core, p, g)
    state = first.get_state()
    assert state["iterations"] == 4
    p_resume = p.copy()
    for g in grads[4:]:
        _core.optimizer_step(core, p, g)

    second = make()
    second.set_state(
        {"iterations": state["iterations"], "slots": {k: v.copy() for k, v in state["slots"].items()}}, N_PARAMS
    )
    assert second.iterations == 4
    core2 = second._bind()
    assert core2.iterations == 4
    if isinstance(second._schedule, schedules.LearningRateSchedule):
        assert second.learning_rate == pytest.approx(second._schedule(4))
    for g in grads[4:]:
        _core.optimizer_step(core2, p_resume, g)
    np.testing.assert_array_equal(p_resume, p)
    assert second.iterations == first.iterations == len(grads)

    # Without the state, a fresh optimizer does not reproduce the run (the check is not vacuous).
    third = make()
    core3 = third._bind()
    p_fresh = p0.copy()
    for g in grads[:4]:
        _core.optimizer_step(core3, p_fresh, g)
    fourth = make()
    core4 = fourth._bind()
    for g in grads[4:]:
        _core.optimizer_step(core4, p_fresh, g)
    assert np.max(np.abs(p_fresh - p)) > 1e-4


def test_get_state_before_binding_and_pending_state():
    opt = optimizers.Adagrad(learning_rate=0.1)
    assert opt.get_state() == {"iterations": 0, "slots": {}}
    opt.set_state({"iterations": 3, "slots": {}}, 4)
    assert opt.iterations == 3
    assert opt.get_state()["iterations"] == 3


@pytest.mark.parametrize(
    "bad", [{"slots": {}}, {"iterations": -1, "slots": {}}, {"iterations": 1.5, "slots": {}}, "state"]
)
def test_set_state_rejects_malformed(bad):
    with pytest.raises(ValueError):
        optimizers.Adam().set_state(bad, 4)
