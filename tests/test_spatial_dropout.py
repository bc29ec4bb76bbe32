"""SpatialDropout1D/2D/3D (keras/src/layers/regularization/spatial_dropout.py): in training whole
channels are dropped (noise shape (batch, 1, ..., 1, channels)) with inverted scaling; identity at
inference. The exact masks are recomputed from the core's counter-based RNG; gradients by finite
differences in training mode; configs, saving and errors."""

import numpy as np
import pytest
from test_gradients import check_model, randomize_params
from test_recurrent_dropout import _hash, _uniform

import maasfin as mf
from maasfin import _core
from maasfin.layers import (
    Conv1D,
    Dense,
    Flatten,
    Input,
    Masking,
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
)

BACKENDS = [pytest.param(_core.Backend.reference, id="reference"), pytest.param(_core.Backend.onednn, id="onednn")]
CASES = [(SpatialDropout1D, (6, 5)), (SpatialDropout2D, (3, 4, 5)), (SpatialDropout3D, (2, 3, 2, 5))]


def channel_scales(step_seed, node, layer_seed, N, C, rate):
    seed = _hash(step_seed, node, 0)
    return np.array(
        [[1 / (1 - rate) if _uniform(seed, layer_seed, n * C + c) >= rate else 0.0 for c in range(C)] for n in range(N)]
    )


@pytest.mark.parametrize("cls, shape", CASES, ids=["1D", "2D", "3D"])
def test_training_drops_whole_channels_with_the_core_masks(rng, cls, shape):
    m = mf.Sequential([Input(shape=shape), cls(0.4, seed=13)])
    m.build()
    m.compile(optimizer="sgd", loss="mse")
    x = rng.standard_normal((4,) + shape).astype(np.float32)
    y = np.zeros_like(x)
    np.testing.assert_array_equal(m.predict(x, verbose=0), x)  # inference: identity
    scales = channel_scales(99, 1, 13, 4, shape[-1], 0.4)
    assert (scales == 0).any() and (scales > 0).any()
    want = x.astype(np.float64) * scales.reshape((4,) + (1,) * (len(shape) - 1) + (shape[-1],))
    loss = m._get_trainer(y.shape).compute_gradients([x], y, None, True, 99)
    assert loss == pytest.approx(np.mean(want**2), rel=1e-5)
    # Element-wise dropout with the same rate would give another loss (a per-element mask).
    assert loss != pytest.approx(np.mean(x.astype(np.float64) ** 2 / 0.6), rel=1e-3)


def test_drop_fraction_follows_rate():
    m = mf.Sequential([Input(shape=(2, 400)), SpatialDropout1D(0.3, seed=1)])
    m.build()
    m.compile(optimizer="sgd", loss="mse")
    x = np.ones((50, 2, 400), np.float32)
    # loss = mean(y^2) = (1 - p_drop) / 0.7^2 over all channels.
    loss = m._get_trainer(x.shape).compute_gradients([x], np.zeros_like(x), None, True, 5)
    dropped = 1 - loss * 0.49
    assert abs(dropped - 0.3) < 0.01  # 20,000 channels: std 0.0032


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls, shape", CASES, ids=["1D", "2D", "3D"])
def test_training_gradients(rng, cls, shape, backend):
    _core.set_backend(backend)
    inp = Input(shape=shape)
    h = cls(0.5, seed=3)(Dense(3, activation="tanh")(inp))
    m = mf.Model(inp, Dense(2)(Flatten()(h)))
    m.build()
    m.compile(optimizer="sgd", loss="mse")
    randomize_params(m, rng, scale=0.5)
    x = rng.standard_normal((3,) + shape).astype(np.float32)
    check_model(m, [x], rng.standard_normal((3, 2)).astype(np.float32), training=True, seed=17, what=cls.__name__)


def test_config_saving_and_mask(rng):
    cfg = SpatialDropout2D(0.2, seed=4, name="sd").get_config()
    assert cfg == {"name": "sd", "trainable": True, "rate": 0.2, "seed": 4, "data_format": "channels_last"}
    assert SpatialDropout2D.from_config(cfg).get_config() == cfg
    assert "data_format" not in SpatialDropout1D(0.1, seed=1).get_config()
    assert isinstance(SpatialDropout3D(0.1).get_config()["seed"], int)  # drawn once, kept
    m = mf.Sequential([Input(shape=(8, 3)), Conv1D(4, 3), SpatialDropout1D(0.3), Flatten(), Dense(1)])
    m.compile("adam", "mse")
    x = rng.standard_normal((32, 8, 3)).astype(np.float32)
    m.fit(x, rng.standard_normal((32, 1)).astype(np.float32), epochs=2, verbose=0)
    loaded = mf.models.from_bytes(m.to_bytes())
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), m.predict(x, verbose=0))
    # A Dropout in Keras, so it keeps a mask.
    inp = Input(shape=(5, 2))
    masked = Masking()(inp)
    assert SpatialDropout1D(0.1)(masked)._keras_mask == masked._keras_mask


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: SpatialDropout1D(1.0, name="s"), r"SpatialDropout1D 's': rate must be a number in \[0, 1\), got 1.0"),
        (
            lambda: SpatialDropout2D(0.1, data_format="channels_first", name="s"),
            r"SpatialDropout2D 's': only data_format='channels_last' is supported",
        ),
        (lambda: SpatialDropout3D(0.1, seed=-1, name="s"), r"seed must be a non-negative integer"),
        (
            lambda: SpatialDropout1D(0.1, name="s")(Input(shape=(4, 3, 2))),
            r"SpatialDropout1D 's' expects one input of shape \(steps, channels\) per sample, got \(4, 3, 2\)",
        ),
        (
            lambda: SpatialDropout2D(0.1, name="s")(Input(shape=(4, 3))),
            r"SpatialDropout2D 's' expects one input of shape \(height, width, channels\) per sample, got \(4, 3\)",
        ),
    ],
)
def test_errors_name_layer_and_shape(make, match):
    with pytest.raises(ValueError, match=match):
        make()
