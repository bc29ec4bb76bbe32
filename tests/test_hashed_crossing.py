"""HashedCrossing: tf.sparse.cross_hashed's hash of a tuple of integer category values."""

import json

import numpy as np
import pytest

from maasfin import _core
from maasfin.layers import Dense, HashedCrossing, Input, IntegerLookup
from maasfin.models import Model, from_bytes

_M = (1 << 64) - 1
_K = 0xC6A4A7935BD1E995


def _cat64(fp1, fp2):  # TensorFlow's FingerprintCat64, in Python
    mix = lambda v: v ^ (v >> 47)  # noqa: E731
    r = fp1 ^ _K
    r ^= (mix((fp2 * _K) & _M) * _K) & _M
    r = (r * _K) & _M
    r = (mix(r) * _K) & _M
    return mix(r)


def _reference_bin(values, num_bins):
    """tf.sparse.cross_hashed (default key 0xDECAFCAFFE): int64 features enter as their value,
    string features as their Fingerprint64."""
    h = 0xDECAFCAFFE
    for v in values:
        h = _cat64(h, _core.fingerprint64(v.encode()) if isinstance(v, str) else int(v) & _M)
    return h % num_bins


def test_reference_hash_reproduces_the_keras_doc_example():
    # keras.layers.HashedCrossing(num_bins=5)((['A','B','A','B','A'], [101,101,101,102,102])) -> [1,4,1,1,3]
    got = [_reference_bin(t, 5) for t in zip("ABABA", [101, 101, 101, 102, 102])]
    assert got == [1, 4, 1, 1, 3]


def test_bins_match_the_reference_and_are_deterministic(rng):
    a = rng.integers(-1000, 1000, size=500)
    b = rng.integers(0, 1 << 20, size=500)
    c = rng.integers(0, 3, size=500)
    layer = HashedCrossing(num_bins=37)
    got = layer((a, b, c))
    assert got.shape == (500,)
    assert got.tolist() == [_reference_bin(t, 37) for t in zip(a, b, c)]
    assert np.array_equal(HashedCrossing(num_bins=37)((a, b, c)), got)  # another instance, same bins
    assert _core.hashed_cross_bin([int(a[0]), int(b[0]), int(c[0])], 37) == got[0]
    # Order matters (a cross of (a, b) is not one of (b, a)); 2-D (batch, 1) inputs give (batch, 1).
    assert not np.array_equal(HashedCrossing(num_bins=37)((b, a)), HashedCrossing(num_bins=37)((a, b)))
    assert np.array_equal(HashedCrossing(num_bins=37)((a[:, None], b[:, None], c[:, None])), got[:, None])


def test_bins_in_range_equal_for_equal_tuples_and_spread(rng):
    num_bins = 64
    a = rng.integers(0, 200, size=20000)
    b = rng.integers(0, 200, size=20000)
    bins = HashedCrossing(num_bins=num_bins)((a, b)).astype(np.int64)
    assert bins.min() >= 0 and bins.max() < num_bins and np.array_equal(bins, np.round(bins))
    by_tuple = {}
    for t, k in zip(zip(a.tolist(), b.tolist()), bins.tolist()):
        assert by_tuple.setdefault(t, k) == k  # equal tuples -> equal bins
    # Distinct tuples collide about 1/num_bins of the time.
    keys = list(by_tuple)
    pairs = rng.integers(0, len(keys), size=(20000, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    collide = np.mean([by_tuple[keys[i]] == by_tuple[keys[j]] for i, j in pairs])
    assert abs(collide - 1 / num_bins) < 0.006
    counts = np.bincount(bins, minlength=num_bins)
    assert counts.min() > 0.7 * len(bins) / num_bins


def test_one_hot_mode():
    a, b = np.array([1, 2, 3, 1]), np.array([4, 5, 6, 4])
    idx = HashedCrossing(num_bins=5)((a, b)).astype(int)
    hot = HashedCrossing(num_bins=5, output_mode="one_hot")((a, b))
    assert hot.shape == (4, 5) and np.array_equal(hot, np.eye(5, dtype=np.float32)[idx])
    x1, x2 = Input(shape=(1,), name="x1"), Input(shape=(1,), name="x2")
    assert HashedCrossing(num_bins=9, output_mode="one_hot")([x1, x2]).shape == (None, 9)
    x3, x4 = Input(shape=(1,), name="x3"), Input(shape=(1,), name="x4")
    assert HashedCrossing(num_bins=9)([x3, x4]).shape == (None, 1)


def test_config_round_trip():
    layer = HashedCrossing(num_bins=12, output_mode="one_hot", name="cx")
    cfg = json.loads(json.dumps(layer.get_config()))
    assert cfg["num_bins"] == 12 and cfg["output_mode"] == "one_hot" and cfg["sparse"] is False
    again = HashedCrossing.from_config(cfg)
    assert again.get_config() == layer.get_config()


def test_model_with_lookups_and_a_cross_saves_and_loads(rng):
    a, b = Input(shape=(1,), name="a"), Input(shape=(1,), name="b")
    la = IntegerLookup(vocabulary=[10, 20, 30], name="a_lookup")
    cross = HashedCrossing(num_bins=8, output_mode="one_hot", name="a_X_b")([la(a), b])
    model = Model([a, b], Dense(1, name="out")(cross))
    model.compile("adam", "mse")
    xa = rng.choice([10, 20, 30, 40], size=(64, 1)).astype(np.float32)
    xb = rng.integers(0, 4, size=(64, 1)).astype(np.float32)
    model.fit([xa, xb], rng.normal(size=(64, 1)).astype(np.float32), epochs=2, verbose=0)
    loaded = from_bytes(model.to_bytes())
    assert np.array_equal(loaded.predict([xa, xb]), model.predict([xa, xb]))


def test_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"HashedCrossing 'hx'.*2 or more inputs"):
        HashedCrossing(num_bins=4, name="hx")((np.array([1, 2]),))
    x1 = Input(shape=(1,), name="one")
    with pytest.raises(ValueError, match=r"HashedCrossing 'hy' crosses 2 or more inputs, got 1"):
        HashedCrossing(num_bins=4, name="hy")([x1])
    with pytest.raises(ValueError, match=r"HashedCrossing 'hz': input 1 row 1 holds 2\.5.*not an integer"):
        HashedCrossing(num_bins=4, name="hz")((np.array([1, 2]), np.array([3.0, 2.5])))
    with pytest.raises(ValueError, match=r"HashedCrossing 'hn': input 0 row 0 holds a missing value"):
        HashedCrossing(num_bins=4, name="hn")((np.array([np.nan]), np.array([1.0])))
    y1, y2 = Input(shape=(2,), name="wide"), Input(shape=(1,), name="narrow")
    with pytest.raises(ValueError, match=r"HashedCrossing 'hw': input 0 has shape \(2,\)"):
        HashedCrossing(num_bins=4, name="hw")([y1, y2])
    s1, s2 = Input(shape=(1,), name="s1", dtype="string"), Input(shape=(1,), name="s2")
    with pytest.raises(TypeError, match=r"HashedCrossing 'hs' cannot take the string input"):
        HashedCrossing(num_bins=4, name="hs")([s1, s2])
    with pytest.raises(ValueError, match=r"HashedCrossing 'hm': output_mode"):
        HashedCrossing(num_bins=4, output_mode="multi_hot", name="hm")
    with pytest.raises(ValueError, match=r"HashedCrossing 'hb': num_bins"):
        HashedCrossing(num_bins=0, name="hb")
    with pytest.raises(ValueError, match=r"HashedCrossing 'hp': sparse"):
        HashedCrossing(num_bins=3, sparse=True, name="hp")
    # In a model: a fraction reaching the layer at predict names it, too.
    a, b = Input(shape=(1,), name="fa"), Input(shape=(1,), name="fb")
    model = Model([a, b], HashedCrossing(num_bins=4, name="hq")([a, b]))
    with pytest.raises(ValueError, match=r"HashedCrossing 'hq'"):
        model.predict([np.array([[1.0]], np.float32), np.array([[0.5]], np.float32)])


def test_onnx_export_refuses_it_by_name(tmp_path):
    a, b = Input(shape=(1,), name="oa"), Input(shape=(1,), name="ob")
    model = Model([a, b], Dense(1)(HashedCrossing(num_bins=4, output_mode="one_hot", name="home_x_job")([a, b])))
    with pytest.raises(ValueError, match=r"HashedCrossing 'home_x_job'"):
        model.export(tmp_path / "m.onnx", format="onnx")
