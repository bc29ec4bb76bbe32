"""Optimizers: five steps of each core update rule against a float64 NumPy transcription of
Keras 3's update rules, plus iteration counting, learning-rate plumbing, validation and lookup.

The tests use learning rates of 0.05-0.1 so that five updates move parameters by O(0.1-1): float32
rounding of the core (a few 1e-8 per step) is then far below the 1e-6 relative tolerance, while
any mistake in a rule (bias correction, epsilon placement, nesterov, amsgrad, centring,
momentum) changes the result by orders of magnitude more; `test_variants_are_distinguishable`
checks that claim on the NumPy side.
"""

import math

import numpy as np
import pytest

import maasfin as mf
from maasfin import _core, optimizers

N_PARAMS = 40
STEPS = 5
# Per-step gradient scales: shrinking and growing so that amsgrad's max(v_hat, v) and momentum matter.
SCALES = [1.0, 3.0, 0.1, 0.5, 0.02]
RTOL, ATOL = 1e-6, 1e-6


# -- NumPy transcriptions of keras/src/optimizers/{sgd,adam,rmsprop}.py --------------------------
class NpSGD:
    def __init__(self, learning_rate, momentum, nesterov):
        self.lr, self.m, self.nesterov = learning_rate, momentum, nesterov
        self.v = None

    def step(self, p, g):
        if self.m == 0:
            return p - self.lr * g
        if self.v is None:
            self.v = np.zeros_like(p)
        self.v = self.m * self.v - self.lr * g
        return p + (self.m * self.v - self.lr * g if self.nesterov else self.v)


class NpAdam:
    def __init__(self, learning_rate, beta_1, beta_2, epsilon, amsgrad):
        self.lr, self.b1, self.b2, self.eps, self.amsgrad = learning_rate, beta_1, beta_2, epsilon, amsgrad
        self.t = 0
        self.m = self.v = self.vhat = None

    def step(self, p, g):
        if self.m is None:
            self.m, self.v, self.vhat = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
        self.t += 1
        alpha = self.lr * math.sqrt(1 - self.b2**self.t) / (1 - self.b1**self.t)
        self.m = self.m + (g - self.m) * (1 - self.b1)
        self.v = self.v + (g * g - self.v) * (1 - self.b2)
        v = self.v
        if self.amsgrad:
            self.vhat = np.maximum(self.vhat, self.v)
            v = self.vhat
        return p - alpha * self.m / (np.sqrt(v) + self.eps)


class NpRMSprop:
    def __init__(self, learning_rate, rho, momentum, epsilon, centered):
        self.lr, self.rho, self.mom, self.eps, self.centered = learning_rate, rho, momentum, epsilon, centered
        self.v = self.a = self.buf = None

    def step(self, p, g):
        if self.v is None:
            self.v, self.a, self.buf = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
        self.v = self.rho * self.v + (1 - self.rho) * g * g
        denom = self.v
        if self.centered:
            self.a = self.rho * self.a + (1 - self.rho) * g
            denom = self.v - self.a * self.a
        inc = self.lr * g / np.sqrt(denom + self.eps)
        if self.mom > 0:
            self.buf = self.mom * self.buf + inc
            return p - self.buf
        return p - inc


NP = {"SGD": NpSGD, "Adam": NpAdam, "RMSprop": NpRMSprop}

CONFIGS = {
    "sgd": ("SGD", dict(learning_rate=0.1, momentum=0.0, nesterov=False)),
    "sgd_momentum": ("SGD", dict(learning_rate=0.1, momentum=0.9, nesterov=False)),
    "sgd_nesterov": ("SGD", dict(learning_rate=0.1, momentum=0.9, nesterov=True)),
    "sgd_momentum_1": ("SGD", dict(learning_rate=0.05, momentum=1.0, nesterov=False)),
    "adam": ("Adam", dict(learning_rate=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False)),
    "adam_amsgrad": ("Adam", dict(learning_rate=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=True)),
    "adam_large_eps": ("Adam", dict(learning_rate=0.1, beta_1=0.8, beta_2=0.9, epsilon=0.5, amsgrad=False)),
    "adam_amsgrad_fast_beta2": ("Adam", dict(learning_rate=0.1, beta_1=0.5, beta_2=0.6, epsilon=1e-7, amsgrad=True)),
    "adam_beta1_zero": ("Adam", dict(learning_rate=0.1, beta_1=0.0, beta_2=0.99, epsilon=1e-7, amsgrad=False)),
    "rmsprop": ("RMSprop", dict(learning_rate=0.05, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False)),
    "rmsprop_large_eps": ("RMSprop", dict(learning_rate=0.05, rho=0.9, momentum=0.0, epsilon=0.5, centered=False)),
    "rmsprop_momentum": ("RMSprop", dict(learning_rate=0.05, rho=0.9, momentum=0.9, epsilon=1e-7, centered=False)),
    "rmsprop_centered": ("RMSprop", dict(learning_rate=0.05, rho=0.9, momentum=0.0, epsilon=1e-7, centered=True)),
    "rmsprop_centered_momentum": (
        "RMSprop",
        dict(learning_rate=0.05, rho=0.8, momentum=0.5, epsilon=1e-3, centered=True),
    ),
}

PY_CLASSES = {"SGD": optimizers.SGD, "Adam": optimizers.Adam, "RMSprop": optimizers.RMSprop}


def _grads(rng, n=N_PARAMS, steps=STEPS):
    return [(s * rng.standard_normal(n)).astype(np.float32) for s in SCALES[:steps]]


def _run_numpy(kind, kwargs, p0, grads):
    opt = NP[kind](**kwargs)
    p = p0.astype(np.float64)
    out = []
    for g in grads:
        p = opt.step(p, g.astype(np.float64))
        out.append(p.copy())
    return out


def _make_core(kind, kwargs, via):
    if via == "core":
        return getattr(_core, kind)(**kwargs)
    return PY_CLASSES[kind](**kwargs)._make_core()


@pytest.mark.parametrize("via", ["core", "python"])
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_update_rule_matches_keras(rng, config, via):
    kind, kwargs = CONFIGS[config]
    opt = _make_core(kind, kwargs, via)
    assert isinstance(opt, _core.Optimizer)
    p0 = rng.standard_normal(N_PARAMS).astype(np.float32)
    grads = _grads(rng)
    expected = _run_numpy(kind, kwargs, p0, grads)
    params = p0.copy()
    for t, (g, e) in enumerate(zip(grads, expected), start=1):
        _core.optimizer_step(opt, params, g)
        assert opt.iterations == t
        np.testing.assert_allclose(params, e, rtol=RTOL, atol=ATOL, err_msg=f"{config} after step {t}")
    # The parameters really moved (the comparison above is not between two copies of p0).
    assert np.max(np.abs(params - p0)) > 0.05


def _adam_eps_inside_sqrt(kw, p0, grads):
    b1, b2, lr, eps = kw["beta_1"], kw["beta_2"], kw["learning_rate"], kw["epsilon"]
    p, m, v = p0.astype(np.float64), np.zeros(p0.size), np.zeros(p0.size)
    for t, g in enumerate(grads, start=1):
        g = g.astype(np.float64)
        m += (g - m) * (1 - b1)
        v += (g * g - v) * (1 - b2)
        p = p - lr * math.sqrt(1 - b2**t) / (1 - b1**t) * m / np.sqrt(v + eps)
    return p


@pytest.mark.parametrize(
    "a,b",
    [
        ("sgd_momentum", "sgd_nesterov"),
        ("sgd", "sgd_momentum"),
        ("adam", "adam_beta1_zero"),
        ("adam_amsgrad_fast_beta2", None),
        ("rmsprop", "rmsprop_centered"),
        ("rmsprop", "rmsprop_momentum"),
        ("rmsprop", "rmsprop_large_eps"),
        ("adam_large_eps", None),
    ],
)
def test_variants_are_distinguishable(rng, a, b):
    """The test data separates each option from its absence by far more than the tolerance."""
    p0 = rng.standard_normal(N_PARAMS).astype(np.float32)
    grads = _grads(rng)
    kind, kw = CONFIGS[a]
    pa = _run_numpy(kind, kw, p0, grads)[-1]
    if b is not None:
        kind_b, kw_b = CONFIGS[b]
        pb = _run_numpy(kind_b, kw_b, p0, grads)[-1]
        assert np.max(np.abs(pa - pb)) > 100 * (ATOL + RTOL)
        return
    # Single configs: compare against the likeliest wrong variant of the same rule.
    if a == "adam_amsgrad_fast_beta2":
        pb = _run_numpy(kind, {**kw, "amsgrad": False}, p0, grads)[-1]
    else:  # epsilon inside the square root instead of outside
        pb = _adam_eps_inside_sqrt(kw, p0, grads)
    assert np.max(np.abs(pa - pb)) > 100 * (ATOL + RTOL)


def test_adam_first_step_is_lr_times_sign():
    # With zero state and bias correction, step 1 of Adam is lr * g / (|g| + eps / sqrt(1 - b2)):
    # lr * sign(g) to within 3e-5 for these |g| >= 0.1.
    opt = _core.Adam(0.01, 0.9, 0.999, 1e-7, False)
    p = np.zeros(4, np.float32)
    _core.optimizer_step(opt, p, np.array([2.0, -0.5, 0.1, -30.0], np.float32))
    np.testing.assert_allclose(p, [-0.01, 0.01, -0.01, 0.01], rtol=1e-4)


def test_zero_gradient_leaves_plain_sgd_params_unchanged(rng):
    opt = _core.SGD(0.5, 0.0, False)
    p0 = rng.standard_normal(7).astype(np.float32)
    p = p0.copy()
    _core.optimizer_step(opt, p, np.zeros(7, np.float32))
    np.testing.assert_array_equal(p, p0)
    # ... but momentum keeps moving them after a non-zero step.
    opt = _core.SGD(0.5, 0.9, False)
    p = p0.copy()
    _core.optimizer_step(opt, p, np.ones(7, np.float32))
    p1 = p.copy()
    _core.optimizer_step(opt, p, np.zeros(7, np.float32))
    np.testing.assert_allclose(p - p1, np.full(7, 0.9 * -0.5), rtol=1e-6)


# -- iterations and learning rate --------------------------------------------------------------
@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop"])
def test_iterations_count_steps(rng, name):
    opt = optimizers.get(name)
    assert opt.iterations == 0
    core = opt._bind()
    assert core.iterations == 0 and opt.iterations == 0
    p = rng.standard_normal(5).astype(np.float32)
    for k in range(1, 4):
        _core.optimizer_step(core, p, rng.standard_normal(5).astype(np.float32))
        assert core.iterations == k
        assert opt.iterations == k


def test_fit_advances_iterations_once_per_batch(rng):
    model = mf.Sequential([mf.layers.Dense(2, input_dim=3), mf.layers.Dense(1)])
    model.compile(optimizer=optimizers.SGD(0.01), loss="mse")
    x = rng.standard_normal((10, 3)).astype(np.float32)
    y = rng.standard_normal((10, 1)).astype(np.float32)
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    assert model.optimizer.iterations == 2 * 3  # ceil(10 / 4) batches per epoch


@pytest.mark.parametrize("config", ["sgd_momentum", "adam", "rmsprop_centered"])
def test_learning_rate_set_on_wrapper_is_read_by_core(rng, config):
    kind, kwargs = CONFIGS[config]
    py_opt = PY_CLASSES[kind](**kwargs)
    py_opt.learning_rate = 0.03  # before binding: used when the core is made
    assert py_opt.learning_rate == pytest.approx(0.03)
    core = py_opt._bind()
    assert core.learning_rate == pytest.approx(0.03)

    p0 = rng.standard_normal(N_PARAMS).astype(np.float32)
    grads = _grads(rng)
    ref = NP[kind](**{**kwargs, "learning_rate": 0.03})
    p_np, params = p0.astype(np.float64), p0.copy()
    for k, g in enumerate(grads):
        if k == 2:  # after binding: the running core picks up the new value at its next step
            py_opt.learning_rate = 0.2
            assert core.learning_rate == pytest.approx(0.2)
            assert py_opt.learning_rate == pytest.approx(0.2)
            ref.lr = 0.2
        _core.optimizer_step(core, params, g)
        p_np = ref.step(p_np, g.astype(np.float64))
        np.testing.assert_allclose(params, p_np, rtol=RTOL, atol=ATOL, err_msg=f"{config} step {k + 1}")


def test_learning_rate_change_applies_to_plain_sgd_step(rng):
    py_opt = optimizers.SGD(learning_rate=0.1)
    core = py_opt._bind()
    py_opt.learning_rate = 0.5
    p0 = rng.standard_normal(6).astype(np.float32)
    g = rng.standard_normal(6).astype(np.float32)
    p = p0.copy()
    _core.optimizer_step(core, p, g)
    np.testing.assert_allclose(p, p0 - 0.5 * g, rtol=1e-6, atol=1e-7)


def test_rebinding_starts_from_fresh_state(rng):
    py_opt = optimizers.Adam(learning_rate=0.1)
    first = py_opt._bind()
    p = rng.standard_normal(5).astype(np.float32)
    _core.optimizer_step(first, p, rng.standard_normal(5).astype(np.float32))
    second = py_opt._bind()
    assert second is not first and second.iterations == 0 and py_opt.iterations == 0


# -- state slots -------------------------------------------------------------------------------
# Each configuration with the slots it uses (the others exist but stay empty).
SLOT_CONFIGS = {
    "sgd": (lambda: _core.SGD(0.1, 0.0, False), set()),
    "sgd_momentum": (lambda: _core.SGD(0.1, 0.9, False), {"velocity"}),
    "sgd_nesterov": (lambda: _core.SGD(0.1, 0.9, True), {"velocity"}),
    "adam": (lambda: _core.Adam(0.01, 0.9, 0.999, 1e-7, False), {"m", "v"}),
    "adam_amsgrad": (lambda: _core.Adam(0.01, 0.9, 0.999, 1e-7, True), {"m", "v", "v_hat"}),
    "rmsprop": (lambda: _core.RMSprop(0.01, 0.9, 0.0, 1e-7, False), {"velocity"}),
    "rmsprop_centered": (lambda: _core.RMSprop(0.01, 0.9, 0.0, 1e-7, True), {"velocity", "average_grad"}),
    "rmsprop_momentum": (lambda: _core.RMSprop(0.01, 0.9, 0.5, 1e-7, False), {"velocity", "momentum"}),
    "adagrad": (lambda: _core.Adagrad(0.01, 0.1, 1e-7), {"accumulator"}),
    "adamax": (lambda: _core.Adamax(0.01, 0.9, 0.999, 1e-7), {"m", "u"}),
    "nadam": (lambda: _core.Nadam(0.01, 0.9, 0.999, 1e-7), {"m", "v"}),
}


@pytest.mark.parametrize("config", sorted(SLOT_CONFIGS))
def test_slot_sizes_match_what_a_step_allocates(rng, config):
    make, used = SLOT_CONFIGS[config]
    n = 11
    opt = make()
    sizes = opt.slot_sizes(n)
    assert set(sizes) == set(opt.slot_names())
    assert sizes == {name: n if name in used else 0 for name in opt.slot_names()}
    assert all(opt.get_slot(name).size == 0 for name in sizes)  # asking allocates nothing
    _core.optimizer_step(opt, rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32))
    assert {name: opt.get_slot(name).size for name in opt.slot_names()} == sizes
    # Sizes for another arena leave the running state alone.
    assert opt.slot_sizes(0) == dict.fromkeys(sizes, 0)
    assert {name: opt.get_slot(name).size for name in opt.slot_names()} == sizes


def test_slot_sizes_rejects_a_negative_count():
    with pytest.raises(ValueError, match=">= 0"):
        _core.Adam(0.01, 0.9, 0.999, 1e-7, False).slot_sizes(-1)


# -- validation ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda: optimizers.SGD(learning_rate=-0.1),
        lambda: optimizers.SGD(learning_rate="fast"),
        lambda: optimizers.SGD(learning_rate=True),
        lambda: optimizers.SGD(learning_rate=float("nan")),
        lambda: optimizers.SGD(momentum=-0.1),
        lambda: optimizers.SGD(momentum=1.5),
        lambda: optimizers.Adam(learning_rate=-1e-3),
        lambda: optimizers.Adam(beta_1=1.0),
        lambda: optimizers.Adam(beta_1=-0.1),
        lambda: optimizers.Adam(beta_2=1.0),
        lambda: optimizers.RMSprop(rho=1.0),
        lambda: optimizers.RMSprop(rho=-0.5),
        lambda: optimizers.RMSprop(learning_rate=-1.0),
        lambda: optimizers.Adam(weight_decay=-0.01),
        lambda: optimizers.SGD(clipnorm=1.0, clipvalue=0.5),
    ],
    ids=[
        "sgd_lr_neg",
        "sgd_lr_str",
        "sgd_lr_bool",
        "sgd_lr_nan",
        "sgd_mom_neg",
        "sgd_mom_gt1",
        "adam_lr_neg",
        "adam_b1_1",
        "adam_b1_neg",
        "adam_b2_1",
        "rms_rho_1",
        "rms_rho_neg",
        "rms_lr_neg",
        "adam_weight_decay",
        "sgd_clipnorm",
    ],
)
def test_python_wrappers_reject_invalid_arguments(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize(
    "make",
    [
        lambda: _core.SGD(-0.1, 0.0, False),
        lambda: _core.SGD(0.1, 1.5, False),
        lambda: _core.SGD(0.1, -0.5, True),
        lambda: _core.Adam(-0.1, 0.9, 0.999, 1e-7, False),
        lambda: _core.Adam(0.1, 1.0, 0.999, 1e-7, False),
        lambda: _core.Adam(0.1, 0.9, 1.0, 1e-7, False),
        lambda: _core.RMSprop(-0.1, 0.9, 0.0, 1e-7, False),
        lambda: _core.RMSprop(0.1, 1.0, 0.0, 1e-7, False),
        lambda: _core.RMSprop(0.1, 0.9, -0.5, 1e-7, False),
        lambda: _core.RMSprop(0.1, 0.9, 1.5, 1e-7, False),
        lambda: _core.SGD(float("nan"), 0.0, False),
    ],
    ids=[
        "sgd_lr",
        "sgd_mom_gt1",
        "sgd_mom_neg",
        "adam_lr",
        "adam_b1",
        "adam_b2",
        "rms_lr",
        "rms_rho",
        "rms_mom_neg",
        "rms_mom_gt1",
        "sgd_lr_nan",
    ],
)
def test_core_optimizers_reject_invalid_arguments(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize("bad", [-0.5, "slow", float("nan")])
def test_learning_rate_setter_validates(bad):
    opt = optimizers.Adam(learning_rate=0.01)
    core = opt._bind()
    with pytest.raises(ValueError):
        opt.learning_rate = bad
    assert opt.learning_rate == pytest.approx(0.01)
    assert core.learning_rate == pytest.approx(0.01)


# -- lookup ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,cls",
    [
        ("sgd", optimizers.SGD),
        ("SGD", optimizers.SGD),
        ("Sgd", optimizers.SGD),
        ("adam", optimizers.Adam),
        ("Adam", optimizers.Adam),
        ("ADAM", optimizers.Adam),
        ("rmsprop", optimizers.RMSprop),
        ("RMSprop", optimizers.RMSprop),
        ("RMSPROP", optimizers.RMSprop),
    ],
)
def test_get_is_case_insensitive(name, cls):
    opt = optimizers.get(name)
    assert type(opt) is cls


def test_get_defaults_are_keras_defaults():
    assert optimizers.get("sgd").get_config() == {
        "name": "SGD",
        "learning_rate": 0.01,
        "momentum": 0.0,
        "nesterov": False,
        "weight_decay": None,
        "clipnorm": None,
        "clipvalue": None,
        "global_clipnorm": None,
    }
    adam = optimizers.get("adam").get_config()
    assert (adam["learning_rate"], adam["beta_1"], adam["beta_2"], adam["epsilon"], adam["amsgrad"]) == (
        0.001,
        0.9,
        0.999,
        1e-7,
        False,
    )
    rms = optimizers.get("rmsprop").get_config()
    assert (rms["learning_rate"], rms["rho"], rms["momentum"], rms["epsilon"], rms["centered"]) == (
        0.001,
        0.9,
        0.0,
        1e-7,
        False,
    )


def test_get_passes_through_instances_and_classes():
    inst = optimizers.RMSprop(learning_rate=0.5)
    assert optimizers.get(inst) is inst
    assert type(optimizers.get(optimizers.Adam)) is optimizers.Adam


def test_get_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as exc:
        optimizers.get("adamq")
    msg = str(exc.value)
    assert "adamq" in msg
    for valid in ("sgd", "adam", "rmsprop"):
        assert valid in msg


def test_get_rejects_non_optimizer_objects():
    with pytest.raises(TypeError):
        optimizers.get(0.01)


# -- optimizer_step argument checks ------------------------------------------------------------
def test_optimizer_step_rejects_fewer_grads_than_params():
    # Fewer gradients than parameters would read past the end of the gradient array.
    opt = _core.SGD(0.1, 0.0, False)
    params = np.zeros(8, np.float32)
    with pytest.raises(ValueError):
        _core.optimizer_step(opt, params, np.ones(5, np.float32))
    np.testing.assert_array_equal(params, 0.0)
    assert opt.iterations == 0


def test_optimizer_step_on_a_strided_view_updates_it_or_refuses(rng):
    # A step must never be applied to a silent temporary copy.
    base = np.zeros(8, np.float32)
    view = base[::2]
    g = rng.standard_normal(4).astype(np.float32)
    try:
        _core.optimizer_step(_core.SGD(0.1, 0.0, False), view, g)
    except (ValueError, TypeError):
        np.testing.assert_array_equal(base, 0.0)
        return
    np.testing.assert_allclose(view, -0.1 * g, rtol=1e-6)
