"""Loading Keras 3 `.keras` and legacy `.h5` files. The fixtures were written by real Keras
(tests/fixtures/keras/make_fixtures.py, versions.json); these tests need h5py, not Keras."""

import io
import json
import os
import pathlib
import tempfile
import zipfile

import h5py
import numpy as np
import pytest

import maasfin as mf
from maasfin.layers import BatchNormalization, Concatenate, Dense, Dropout, GaussianNoise, LayerNormalization
from maasfin.models import Model, Sequential, from_bytes, load_model
from maasfin.saving import ModelFileError

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "keras")


def _fx(name):
    return os.path.join(FIXTURES, name)


def _inputs(kind):
    if kind == "seq":
        return np.load(_fx("seq_x.npy"))
    return [np.load(_fx("fun_xa.npy")), np.load(_fx("fun_xb.npy"))]


@pytest.mark.parametrize("ext", ["keras", "h5"])
@pytest.mark.parametrize("kind", ["seq", "fun"])
def test_keras_files_predict_like_keras(kind, ext):
    model = load_model(_fx(f"{kind}.{ext}"))
    expected = np.load(_fx(f"{kind}_pred.npy"))
    np.testing.assert_allclose(model.predict(_inputs(kind)), expected, rtol=1e-5, atol=1e-6)
    if kind == "seq":
        assert type(model) is Sequential and model.name == "credit_seq"
        assert [l.name for l in model.layers] == ["hidden", "bn", "drop", "hidden2", "score"]
        assert [type(l) for l in model.layers] == [Dense, BatchNormalization, Dropout, Dense, Dense]
        assert model.get_layer("hidden").kernel_regularizer.get_config() == {"l2": pytest.approx(1e-4)}
        assert type(model.optimizer) is mf.optimizers.Adam
        assert model.optimizer.learning_rate == pytest.approx(0.01) and model.loss.name == "binary_crossentropy"
    else:
        assert type(model) is Model and model.name == "credit_fun"
        assert [t.name for t in model.inputs] == ["bureau", "account"]
        assert type(model.get_layer("joined")) is Concatenate and type(model.get_layer("noise")) is GaussianNoise
        assert type(model.get_layer("norm")) is LayerNormalization
        assert type(model.optimizer) is mf.optimizers.SGD and model.optimizer.momentum == pytest.approx(0.9)
        assert model.loss.name == "sparse_categorical_crossentropy"
    assert model.optimizer.iterations == 0  # Keras's optimizer state is not imported


def test_loaded_keras_model_trains_and_saves_as_maas(tmp_path):
    model = load_model(_fx("seq.keras"))
    x = np.load(_fx("seq_x.npy"))
    model.fit(x, (x[:, 0] > 0).astype(np.float32), epochs=2, batch_size=4, verbose=0)
    model.save(tmp_path / "credit.maas")
    again = load_model(tmp_path / "credit.maas")
    assert np.array_equal(again.predict(x), model.predict(x))


def test_compile_false_and_untranslatable_compile_configs():
    model = load_model(_fx("fun.keras"), compile=False)
    assert not model.compiled
    blob = _edit_keras(_fx("fun.keras"), lambda c: c["compile_config"]["optimizer"].update(class_name="Lion"))
    with pytest.raises(ModelFileError, match="optimizer 'Lion' has no maasfin equivalent"):
        _load_bytes(blob, ".keras")
    assert not _load_bytes(blob, ".keras", compile=False).compiled


# -- hostile and unsupported Keras files -------------------------------------------------------------
def _load_bytes(blob, suffix, compile=True):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model" + suffix)
        with open(path, "wb") as f:
            f.write(blob)
        return load_model(path, compile=compile)


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _zip(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _edit_keras(path, edit):
    m = _members(path)
    cfg = json.loads(m["config.json"])
    edit(cfg)
    m["config.json"] = json.dumps(cfg).encode()
    return _zip(m)


def _edit_weights(path, edit):
    m = _members(path)
    buf = io.BytesIO()
    with h5py.File(io.BytesIO(m["model.weights.h5"]), "r") as src, h5py.File(buf, "w") as dst:
        for key in src:
            src.copy(src[key], dst, name=key)
        edit(dst)
    m["model.weights.h5"] = buf.getvalue()
    return _zip(m)


def test_unsupported_layers_never_run_code():
    def lambda_layer(c):
        c["config"]["layers"][1] = {
            "module": "keras.layers",
            "class_name": "Lambda",
            "config": {
                "name": "evil",
                "function": {"class_name": "__lambda__", "config": {"code": "b3MuZXhpdCgxKQ=="}},
            },
        }

    with pytest.raises(ModelFileError, match=r"layer 1 is a Keras 'Lambda' layer, which maasfin does not support"):
        _load_bytes(_edit_keras(_fx("seq.keras"), lambda_layer), ".keras")

    def module_injection(c):
        c["config"]["layers"][1].update(module="os", class_name="system")

    with pytest.raises(ModelFileError, match=r"layer 1 is a Keras 'system' layer"):
        _load_bytes(_edit_keras(_fx("seq.keras"), module_injection), ".keras")

    def lora(c):
        c["config"]["layers"][1]["config"]["lora_rank"] = 4

    with pytest.raises(ModelFileError, match=r"Keras layer 'hidden' \(Dense\) uses the Keras option lora_rank=4"):
        _load_bytes(_edit_keras(_fx("seq.keras"), lora), ".keras")

    def shared(c):
        layer = c["config"]["layers"][1]
        layer["inbound_nodes"] = layer["inbound_nodes"] * 2

    with pytest.raises(ModelFileError, match="is called more than once"):
        _load_bytes(_edit_keras(_fx("fun.keras"), shared), ".keras")


def test_keras_archive_and_hdf5_rules():
    m = _members(_fx("seq.keras"))
    with pytest.raises(ModelFileError, match=r"unexpected member 'assets/evil.py'"):
        _load_bytes(_zip({**m, "assets/evil.py": b"import os"}), ".keras")
    with pytest.raises(ModelFileError, match=r"written by Keras '2.15.0'; maasfin reads Keras 3 files"):
        _load_bytes(_zip({**m, "metadata.json": b'{"keras_version": "2.15.0"}'}), ".keras")

    def external(h5):
        del h5["layers/dense/vars/0"]
        h5["layers/dense/vars/0"] = h5py.ExternalLink("/etc/passwd", "/data")

    with pytest.raises(
        ModelFileError,
        match=r"model.weights.h5 layers/dense/vars/0 is a ExternalLink; only plain HDF5 objects are read",
    ):
        _load_bytes(_edit_weights(_fx("seq.keras"), external), ".keras")

    def float64(h5):
        data = h5["layers/dense/vars/0"][()]
        del h5["layers/dense/vars/0"]
        h5["layers/dense/vars/0"] = data.astype(np.float64)

    with pytest.raises(ModelFileError, match=r"layers/dense/vars/0 has dtype float64; only float32 is read"):
        _load_bytes(_edit_weights(_fx("seq.keras"), float64), ".keras")

    def wrong_shape(h5):
        del h5["layers/dense/vars/0"]
        h5["layers/dense/vars/0"] = np.zeros((6, 15), np.float32)

    with pytest.raises(ModelFileError, match=r"has shape \(6, 15\), the architecture needs \(6, 16\)"):
        _load_bytes(_edit_weights(_fx("seq.keras"), wrong_shape), ".keras")

    raw = pathlib.Path(_fx("seq.h5")).read_bytes()
    for bad in (raw[: len(raw) // 2], b"not hdf5 at all", raw[:8] + b"\x00" * 100):
        with pytest.raises(ModelFileError):
            _load_bytes(bad, ".h5")
    with pytest.raises(ModelFileError, match=r"is a Keras .keras archive, not a .maas file; load it with load_model"):
        from_bytes(pathlib.Path(_fx("seq.keras")).read_bytes())  # from_bytes reads .maas bytes only


def _load_or_reject(blob, suffix):
    try:
        model = _load_bytes(blob, suffix)
    except ModelFileError as e:
        assert e.__cause__ is None, f"rejected only by the catch-all: {e!r} <- {e.__cause__!r}"
        return "rejected"
    xs = [np.zeros((2,) + s, np.float32) for s in model._input_shapes]
    assert model.predict(xs[0] if len(xs) == 1 else xs).shape[0] == 2
    return "loaded"


def test_corrupt_keras_files_never_crash_the_process():
    """Bit flips in the HDF5 data (which can crash the HDF5 library: it runs in a child process)
    and random changes to the Keras config: each file loads or raises a deliberate ModelFileError."""
    import random

    import test_saving_fuzz as fuzz

    rng = random.Random(5)
    outcomes = []
    for i in range(12):  # each HDF5 read starts a process: a few cases here, the long fuzzing is offline
        kind = ("seq", "fun")[i % 2]
        if i % 3 == 0:
            raw = bytearray(pathlib.Path(_fx(f"{kind}.h5")).read_bytes())
            for _ in range(rng.randint(1, 6)):
                raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
            outcomes.append(_load_or_reject(bytes(raw), ".h5"))
        elif i % 3 == 1:
            m = _members(_fx(f"{kind}.keras"))
            w = bytearray(m["model.weights.h5"])
            for _ in range(rng.randint(1, 6)):
                w[rng.randrange(len(w))] ^= 1 << rng.randrange(8)
            outcomes.append(_load_or_reject(_zip({**m, "model.weights.h5": bytes(w)}), ".keras"))
        else:
            chooser = fuzz.RandomChooser(rng)
            blob = _edit_keras(_fx(f"{kind}.keras"), lambda c: fuzz.mutate_leaf(chooser, c["config"]))
            outcomes.append(_load_or_reject(blob, ".keras"))
    assert "rejected" in outcomes and "loaded" in outcomes


# -- recurrent models: masks, states, wrappers (fixtures by make_rnn_fixtures.py) ------------------
@pytest.mark.parametrize("ext", ["keras", "h5"])
def test_keras_masked_sequential_predicts_like_keras(ext):
    """Masking -> LSTM(return_sequences, recurrent_dropout) -> GRU(reset_after=False) -> Dense, on
    sequences padded at the end, the start, the middle, and entirely."""
    model = load_model(_fx(f"rnn_seq.{ext}"))
    x = np.load(_fx("rnn_seq_x.npy"))
    np.testing.assert_allclose(model.predict(x, verbose=0), np.load(_fx("rnn_seq_pred.npy")), rtol=1e-5, atol=1e-6)
    lstm, gru = model.get_layer("lstm"), model.get_layer("gru")
    assert lstm.recurrent_dropout == 0.2 and gru.reset_after is False and gru.get_weights()[2].shape == (12,)
    assert lstm._mask_in is not None and gru._mask_in is not None


@pytest.mark.parametrize("ext", ["keras", "h5"])
def test_keras_functional_states_masks_and_bidirectional_predict_like_keras(ext):
    """Embedding(mask_zero) -> LSTM(return_state) whose states start a decoder LSTM; a Bidirectional
    GRU over the masked embeddings; masked GlobalAveragePooling1D; SpatialDropout1D. Keras writes
    the masks as not_equal ops and mask= arguments; maasfin derives the same masks and checks them."""
    model = load_model(_fx(f"rnn_fun.{ext}"))
    xs = [np.load(_fx("rnn_fun_xa.npy")), np.load(_fx("rnn_fun_xb.npy"))]
    np.testing.assert_allclose(model.predict(xs, verbose=0), np.load(_fx("rnn_fun_pred.npy")), rtol=1e-5, atol=1e-6)
    cfg = model.get_config()
    dec = next(e for e in cfg["layers"] if e["name"] == "decoder")
    assert dec["inbound_layers"] == ["decoder_in", ["encoder", 1], ["encoder", 2]]
    assert all(e["class_name"] not in ("NotEqual", "Any") for e in cfg["layers"])
    again = from_bytes(model.to_bytes())
    np.testing.assert_array_equal(again.predict(xs, verbose=0), model.predict(xs, verbose=0))


def test_keras_mask_wiring_must_match():
    def drop_mask(cfg):  # Keras would run the encoder unmasked; maasfin would mask it
        for e in cfg["config"]["layers"]:
            if e["config"]["name"] == "encoder":
                e["inbound_nodes"][0]["kwargs"]["mask"] = None

    with pytest.raises(
        ModelFileError,
        match=r"Keras layer 'encoder' reads the mask None but maasfin would give it "
        r"\('tokens', 0.0\)",
    ):
        _load_bytes(_edit_keras(_fx("rnn_fun.keras"), drop_mask), ".keras")

    def custom_backward(cfg):
        for e in cfg["config"]["layers"]:
            if e["class_name"] == "Bidirectional":
                e["config"]["backward_layer"]["config"]["units"] = 5

    with pytest.raises(ModelFileError, match=r"has a backward_layer that differs from its layer in \['units'\]"):
        _load_bytes(_edit_keras(_fx("rnn_fun.keras"), custom_backward), ".keras")


@pytest.mark.parametrize(
    "case",
    ["lstm_back_states", "rnn_initial_state", "bidirectional_states", "gru_reset_before_backwards", "masked_pooling"],
)
def test_keras_recurrent_semantics(case):
    """Keras's own outputs for: masked LSTM read backwards with states; an initial_state call (Keras
    then ignores the sequence's mask); Bidirectional LSTM states with initial states, merge 'mul';
    GRU(reset_after=False) backwards with a mask; masked GlobalAveragePooling1D (an all-masked row
    gives NaN in Keras) next to a GRU's state."""
    xs = [
        np.load(_fx(f"rnn_case_{case}_x{k}.npy")) for k in range(5) if os.path.exists(_fx(f"rnn_case_{case}_x{k}.npy"))
    ]
    want = np.load(_fx(f"rnn_case_{case}_pred.npy"))
    model = load_model(_fx(f"rnn_case_{case}.keras"))
    with np.errstate(invalid="ignore"):
        got = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(np.nan_to_num(got), np.nan_to_num(want), rtol=1e-5, atol=1e-6)
    if case == "masked_pooling":
        assert np.isnan(want).any()
