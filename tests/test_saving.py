"""Model files (.maas), weights files, configs, pickling, atomic writes and the safe loader."""

import copy
import datetime
import hashlib
import io
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import textwrap
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest
import safetensors.numpy

import maasfin as mf
from maasfin import layers as L
from maasfin import registry, saving
from maasfin.layers import Activation, Add, Concatenate, Dense, Dropout, Input
from maasfin.models import Model, Sequential, from_bytes, load_model
from maasfin.saving import ModelFileError, archive, objects


# -- helpers -----------------------------------------------------------------------------------------
def _data(rng, n=96, d=4):
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.float32)
    return x, y


def _trained_sequential(rng, optimizer="adam", epochs=2):
    x, y = _data(rng)
    model = Sequential(
        [
            Dense(8, activation="relu", input_dim=4, name="dense"),
            Dropout(0.25, name="dropout"),
            Dense(1, activation="sigmoid", name="dense_1"),
        ],
        name="credit",
    )
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=16, verbose=0)
    return model, x, y


def _functional(rng):
    a, b = Input(shape=(4,), name="applicant"), Input(shape=(3,), name="bureau")
    h = Concatenate(name="joined")([Dense(6, activation="tanh", name="enc")(a), b])
    out = Dense(1, activation="sigmoid", name="score")(
        Add(name="sum")([Dense(2, name="left")(h), Activation("relu", name="act")(Dense(2, name="right")(h))])
    )
    model = Model(inputs=[a, b], outputs=out, name="two_towers")
    model.compile(optimizer=mf.optimizers.SGD(0.05, momentum=0.9), loss="mse", metrics=["mae"])
    xa, y = _data(rng)
    xb = rng.normal(size=(len(y), 3)).astype(np.float32)
    model.fit([xa, xb], y, epochs=2, batch_size=8, verbose=0)
    return model, [xa, xb], y


def _same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    return len(wa) == len(wb) and all(u.shape == v.shape and np.array_equal(u, v) for u, v in zip(wa, wb))


def _members(blob: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _pack(members: dict, fix_hashes=True, method=zipfile.ZIP_STORED) -> bytes:
    """A zip of `members` (name -> bytes, or list of (name, bytes) for duplicates), with the
    SHA-256 entries of metadata.json recomputed so that deeper checks are reached."""
    items = list(members.items()) if isinstance(members, dict) else list(members)
    if fix_hashes:
        d = dict(items)
        meta = json.loads(d["metadata.json"])
        for name in ("weights.safetensors", "optimizer.safetensors"):
            if name in d and name in meta["sha256"]:
                meta["sha256"][name] = hashlib.sha256(d[name]).hexdigest()
        items = [(n, json.dumps(meta).encode() if n == "metadata.json" else b) for n, b in items]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names we write on purpose
        for name, data in items:
            zf.writestr(name, data)
    return buf.getvalue()


def _edit_json(blob: bytes, member: str, edit) -> bytes:
    m = _members(blob)
    doc = json.loads(m[member])
    edit(doc)
    m[member] = json.dumps(doc).encode()
    return _pack(m)


def _edit_weights(blob: bytes, edit, member="weights.safetensors") -> bytes:
    m = _members(blob)
    tensors = safetensors.numpy.load(m[member])
    header_len = int.from_bytes(m[member][:8], "little")
    meta = json.loads(m[member][8 : 8 + header_len]).get("__metadata__")
    tensors = edit(tensors)
    m[member] = safetensors.numpy.save(tensors, metadata=meta)
    return _pack(m)


@pytest.fixture
def blob(rng):
    model, _, _ = _trained_sequential(rng)
    return model.to_bytes()


# -- round trips -------------------------------------------------------------------------------------
def test_sequential_round_trip_predicts_bit_for_bit(tmp_path, rng):
    model, x, y = _trained_sequential(rng)
    path = tmp_path / "credit.maas"
    model.save(path)
    loaded = load_model(path)
    assert type(loaded) is Sequential and loaded.name == model.name
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers] == ["dense", "dropout", "dense_1"]
    assert [type(l) for l in loaded.layers] == [Dense, Dropout, Dense]
    assert loaded.layers[1].seed == model.layers[1].seed
    assert _same_weights(model, loaded)
    assert np.array_equal(loaded.predict(x), model.predict(x))
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    assert loaded.compiled and type(loaded.optimizer) is mf.optimizers.Adam
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.loss.get_config() == model.loss.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations == 12
    assert loaded.get_config() == json.loads(json.dumps(model.get_config()))


def test_functional_round_trip_with_fan_out_add_concatenate(tmp_path, rng):
    model, xs, y = _functional(rng)
    model.save(tmp_path / "f.maas")
    loaded = load_model(tmp_path / "f.maas")
    assert type(loaded) is Model and loaded.name == "two_towers"
    assert [t.name for t in loaded.inputs] == ["applicant", "bureau"]
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    assert np.array_equal(loaded.predict(xs), model.predict(xs))
    assert np.array_equal(loaded.predict({"applicant": xs[0], "bureau": xs[1]}), model.predict(xs))
    assert loaded.get_config() == json.loads(json.dumps(model.get_config()))
    cfg = loaded.get_config()
    assert cfg["input_layers"] == ["applicant", "bureau"] and cfg["output_layers"] == ["score"]
    assert {e["name"]: e["inbound_layers"] for e in cfg["layers"]}["sum"] == ["left", "act"]


def test_feature_names_and_input_schema_survive(tmp_path, rng):
    x, y = _data(rng)
    frame = pd.DataFrame(x, columns=["age", "income", "debt", "amount"])
    model = Sequential([Dense(4, activation="relu"), Dense(1, activation="sigmoid")])
    model.compile("adam", "bce")
    model.fit(frame, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.maas")
    loaded = load_model(tmp_path / "m.maas")
    assert loaded.feature_names == ["age", "income", "debt", "amount"]
    reordered = frame[["debt", "amount", "age", "income"]]
    assert np.array_equal(loaded.predict(reordered), model.predict(frame))
    doc = json.loads(_members((tmp_path / "m.maas").read_bytes())["config.json"])
    assert doc["input_schema"] == {
        "inputs": [{"name": "input_layer", "shape": [4], "dtype": "float32"}],
        "feature_names": ["age", "income", "debt", "amount"],
    }


def test_compile_false_skips_compile_and_optimizer(tmp_path, rng):
    model, x, _ = _trained_sequential(rng)
    model.save(tmp_path / "m.maas")
    loaded = load_model(tmp_path / "m.maas", compile=False)
    assert not loaded.compiled and loaded.optimizer is None
    assert np.array_equal(loaded.predict(x), model.predict(x))
    with pytest.raises(RuntimeError, match=r"must call compile\(\) before fit"):
        loaded.fit(x, x[:, :1], verbose=0)


OPTIMIZERS = [
    lambda: mf.optimizers.SGD(0.05),
    lambda: mf.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    lambda: mf.optimizers.Adam(0.01),
    lambda: mf.optimizers.Adam(0.01, amsgrad=True, clipnorm=1.0),
    lambda: mf.optimizers.AdamW(0.01),
    lambda: mf.optimizers.RMSprop(0.01, momentum=0.5, centered=True),
    lambda: mf.optimizers.Adagrad(0.05),
    lambda: mf.optimizers.Adamax(0.01),
    lambda: mf.optimizers.Nadam(0.01),
    lambda: mf.optimizers.Adam(mf.optimizers.schedules.ExponentialDecay(0.01, decay_steps=5, decay_rate=0.5)),
]


@pytest.mark.parametrize("make_optimizer", OPTIMIZERS, ids=lambda f: "")
def test_training_resumes_exactly_after_load(make_optimizer, rng):
    model, x, y = _trained_sequential(rng, optimizer=make_optimizer())
    loaded = from_bytes(model.to_bytes())
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    state, restored = model.optimizer.get_state(), loaded.optimizer.get_state()
    assert restored["iterations"] == state["iterations"] == 12
    assert sorted(restored["slots"]) == sorted(state["slots"])
    assert all(np.array_equal(restored["slots"][k], state["slots"][k]) for k in state["slots"])
    mf.utils.set_random_seed(99)
    model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    mf.utils.set_random_seed(99)
    loaded.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert loaded.optimizer.iterations == model.optimizer.iterations == 30
    assert _same_weights(model, loaded)


def test_include_optimizer_false_restarts_the_optimizer(rng):
    model, x, y = _trained_sequential(rng)
    blob = model.to_bytes(include_optimizer=False)
    assert sorted(_members(blob)) == ["config.json", "metadata.json", "weights.safetensors"]
    loaded = from_bytes(blob)
    assert loaded.compiled and loaded.optimizer.iterations == 0
    assert np.array_equal(loaded.predict(x), model.predict(x))


def test_unbuilt_sequential_round_trips_unbuilt(rng):
    model = Sequential([Dense(3, activation="relu", name="h"), Dense(1, name="out")], name="lazy")
    model.compile("sgd", "mse")
    loaded = from_bytes(model.to_bytes())
    assert not loaded.built and loaded.compiled and [l.name for l in loaded.layers] == ["h", "out"]
    assert safetensors.numpy.load(_members(model.to_bytes())["weights.safetensors"]) == {}
    x, y = _data(rng, d=5)
    mf.utils.set_random_seed(4)
    model.fit(x, y, epochs=1, verbose=0)
    mf.utils.set_random_seed(4)
    loaded.fit(x, y, epochs=1, verbose=0)
    assert loaded.input_shape == (None, 5) and _same_weights(model, loaded)


def test_metadata_member(tmp_path, rng):
    model, _, _ = _trained_sequential(rng)
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    model.save(
        tmp_path / "m.maas",
        metadata={"owner": "credit-risk", "approved": True, "cutoff": 0.42, "segments": ["retail", {"id": 7}]},
    )
    meta = saving.read_metadata(tmp_path / "m.maas")
    members = _members((tmp_path / "m.maas").read_bytes())
    assert meta["format"] == "maasfin.model" and meta["format_version"] == 1
    assert meta["maasfin_version"] == mf.__version__
    created = datetime.datetime.fromisoformat(meta["created"].replace("Z", "+00:00"))
    assert meta["created"].endswith("Z") and before <= created <= datetime.datetime.now(datetime.timezone.utc)
    assert meta["history"] == {
        "epochs": 2,
        "last_epoch": 1,
        "logs": {k: v[-1] for k, v in model.history.history.items()},
    }
    assert meta["sha256"] == {
        n: hashlib.sha256(members[n]).hexdigest() for n in ("weights.safetensors", "optimizer.safetensors")
    }
    assert meta["user_metadata"] == {
        "owner": "credit-risk",
        "approved": True,
        "cutoff": 0.42,
        "segments": ["retail", {"id": 7}],
    }
    assert list(members) == ["config.json", "weights.safetensors", "optimizer.safetensors", "metadata.json"]


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (["not", "a dict"], TypeError, "metadata must be a dict, got list"),
        ({"auc": float("nan")}, ValueError, r"metadata\['auc'\]: nan is not a finite number"),
        ({"when": datetime.date(2024, 1, 1)}, ValueError, r"metadata\['when'\]: date value .* is not JSON"),
        ({1: "x"}, ValueError, "keys must be strings"),
        ({"big": 2**70}, ValueError, "does not fit in 64 bits"),
        ({"blob": "x" * (1 << 20)}, ValueError, "more than the limit of 1048576"),
    ],
)
def test_user_metadata_is_validated(bad, error, match, tmp_path, rng):
    model, _, _ = _trained_sequential(rng)
    with pytest.raises(error, match=match):
        model.save(tmp_path / "m.maas", metadata=bad)
    assert not os.path.exists(tmp_path / "m.maas")


def test_save_path_rules(tmp_path, rng):
    model, _, _ = _trained_sequential(rng)
    with pytest.raises(ValueError, match=r"must end in '.maas' or '.keras' or '.h5' or '.hdf5', got '.*model.onnx'"):
        model.save(tmp_path / "model.onnx")
    model.save(tmp_path / "m.maas")
    with pytest.raises(FileExistsError, match="overwrite=False"):
        model.save(tmp_path / "m.maas", overwrite=False)
    with pytest.raises(ValueError, match=r"must end in '.weights.safetensors' or '.weights.h5', got '.*w.h5'"):
        model.save_weights(tmp_path / "w.h5")


def test_save_weights_and_load_weights(tmp_path, rng):
    model, x, _ = _trained_sequential(rng)
    model.save_weights(tmp_path / "m.weights.safetensors")
    # The same architecture built again in this process gets other automatic names: matched by position.
    twin = Sequential(
        [
            Dense(8, activation="relu", input_dim=4, name="h"),
            Dropout(0.25, name="d"),
            Dense(1, activation="sigmoid", name="o"),
        ]
    )
    twin.load_weights(tmp_path / "m.weights.safetensors")
    assert np.array_equal(twin.predict(x), model.predict(x))
    # By name, from a .maas file too.
    model.save(tmp_path / "m.maas")
    other = from_bytes(model.to_bytes())
    other.set_weights([np.zeros_like(w) for w in other.get_weights()])
    other.load_weights(tmp_path / "m.maas")
    assert _same_weights(other, model)
    wider = Sequential([Dense(9, activation="relu", input_dim=4), Dense(1)])
    with pytest.raises(ModelFileError, match=r"has shape \(4, 8\), model '.*' needs \(4, 9\)"):
        wider.load_weights(tmp_path / "m.weights.safetensors")
    deeper = Sequential([Dense(8, input_dim=4), Dense(8), Dense(1)])
    with pytest.raises(ModelFileError, match="weights do not match the architecture: missing"):
        deeper.load_weights(tmp_path / "m.weights.safetensors")
    with pytest.raises(ValueError, match="not built yet"):
        Sequential([Dense(1)]).load_weights(tmp_path / "m.weights.safetensors")


def test_load_weights_rejects_other_dtypes_and_foreign_files(tmp_path, rng):
    model, _, _ = _trained_sequential(rng)
    path = tmp_path / "m.weights.safetensors"
    tensors = {
        f"{l.name}/{p}": w.astype(np.float64)
        for l in model.layers
        for (p, _, _), w in zip(l._param_specs(), l.get_weights())
    }
    path.write_bytes(
        safetensors.numpy.save(
            tensors, metadata={"format": "maasfin.weights", "format_version": "1", "layers": '["dense", "dense_1"]'}
        )
    )
    with pytest.raises(ModelFileError, match=r"has dtype 'F64'; only F32 \(float32\) is allowed"):
        model.load_weights(path)
    path.write_bytes(safetensors.numpy.save({k: v.astype(np.float32) for k, v in tensors.items()}))
    with pytest.raises(
        ModelFileError, match=r"__metadata__ is missing field\(s\) \['format', 'format_version', 'layers'\]"
    ):
        model.load_weights(path)


# -- configs -----------------------------------------------------------------------------------------
def test_model_get_config_from_config(rng):
    model, xs, _ = _functional(rng)
    clone = Model.from_config(model.get_config())
    assert type(clone) is Model and clone.get_config() == json.loads(json.dumps(model.get_config()))
    assert clone.predict(xs).shape == model.predict(xs).shape
    seq, x, _ = _trained_sequential(rng)
    seq_clone = Sequential.from_config(seq.get_config())
    assert type(seq_clone) is Sequential and seq_clone.built and seq_clone.input_shape == (None, 4)
    assert seq_clone.get_config() == json.loads(json.dumps(seq.get_config()))
    assert type(Model.from_config(seq.get_config())) is Sequential
    with pytest.raises(ModelFileError, match="functional model's config; use Model.from_config"):
        Sequential.from_config(model.get_config())
    bad = model.get_config()
    bad["layers"][2]["class_name"] = "Lambda"
    with pytest.raises(ModelFileError, match="names unknown class 'Lambda'; allowed: Activation, Add"):
        Model.from_config(bad)


# Example arguments and input shapes for every layer class that maasfin.layers exports. A new
# layer fails test_layer_examples_cover_every_exported_layer until it is listed here, and
# test_every_layer_round_trips until its get_config/from_config round trip works in a model file.
LAYER_EXAMPLES = {
    "InputLayer": [],  # in every model below, and checked on its own
    "Dense": [
        (dict(units=3, activation="gelu", use_bias=False, kernel_initializer="he_normal"), [(5,)]),
        (
            dict(
                units=2,
                kernel_regularizer=mf.regularizers.L1L2(l1=0.01, l2=0.02),
                bias_regularizer="l2",
                kernel_constraint=mf.constraints.MaxNorm(2.0),
                bias_constraint=mf.constraints.NonNeg(),
                activity_regularizer=mf.regularizers.L1(0.001),
            ),
            [(4,)],
        ),
    ],
    "Activation": [(dict(activation="softmax"), [(4,)])],
    "Dropout": [(dict(rate=0.3, seed=17), [(4,)])],
    "Add": [({}, [(3,), (3,)])],
    "Concatenate": [(dict(axis=-1), [(2,), (3,)])],
    "Subtract": [({}, [(3,), (3,)])],
    "Multiply": [({}, [(3,), (3,), (3,)])],
    "Average": [({}, [(2, 3), (2, 3)])],
    "Maximum": [({}, [(3,), (3,)])],
    "Minimum": [({}, [(3,), (3,)])],
    "Dot": [(dict(axes=1, normalize=True), [(4,), (4,)]), (dict(axes=[-1, -1]), [(3,), (3,)])],
    "BatchNormalization": [(dict(momentum=0.8, epsilon=1e-4, center=False), [(4,)])],
    "LayerNormalization": [(dict(epsilon=1e-5, beta_initializer="ones"), [(4,)])],
    "GaussianNoise": [(dict(stddev=0.3, seed=3), [(4,)])],
    "GaussianDropout": [(dict(rate=0.2, seed=4), [(4,)])],
    "AlphaDropout": [(dict(rate=0.1, seed=5), [(4,)])],
    # Preprocessing layers: (kwargs, shapes, data maker (rng, n, shape) -> array, input dtype).
    "Normalization": [
        (dict(mean=[0.5, -1.0, 2.0], variance=[4.0, 1.0, 0.25]), [(3,)]),
        (dict(mean=1.0, variance=2.0, invert=True), [(2,)]),
    ],
    "Discretization": [
        (dict(bin_boundaries=[-0.5, 0.0, 0.5], output_mode="one_hot"), [(1,)]),
        (dict(bin_boundaries=[0.0, 1.0], output_mode="count"), [(3,)]),
    ],
    "CategoryEncoding": [
        (
            dict(num_tokens=5, output_mode="count"),
            [(3,)],
            lambda rng, n, s: rng.integers(0, 5, size=(n,) + s),
            "float32",
        )
    ],
    "IntegerLookup": [
        (
            dict(vocabulary=[7, 3, 5], mask_token=0, output_mode="one_hot"),
            [(1,)],
            lambda rng, n, s: rng.integers(0, 9, size=(n,) + s),
            "int64",
        )
    ],
    "StringLookup": [
        (
            dict(vocabulary=["rent", "owner"], num_oov_indices=2, output_mode="multi_hot"),
            [(2,)],
            lambda rng, n, s: rng.choice(np.array(["rent", "owner", "other", "parents"], dtype=object), size=(n,) + s),
            "string",
        )
    ],
    "Hashing": [
        (
            dict(num_bins=4, output_mode="one_hot"),
            [(1,)],
            lambda rng, n, s: rng.choice(np.array(["a", "b", "c"], dtype=object), size=(n,) + s),
            "string",
        ),
        (
            dict(num_bins=5, mask_value=0, output_mode="count"),
            [(2,)],
            lambda rng, n, s: rng.integers(-3, 30, size=(n,) + s),
            "int64",
        ),
    ],
    "HashedCrossing": [
        (
            dict(num_bins=7, output_mode="one_hot"),
            [(1,), (1,)],
            lambda rng, n, s: rng.integers(-3, 30, size=(n,) + s),
            "int64",
        ),
        (dict(num_bins=50), [(1,), (1,), (1,)], lambda rng, n, s: rng.integers(0, 5, size=(n,) + s), "int64"),
    ],
    "Embedding": [
        (
            dict(input_dim=6, output_dim=3, embeddings_regularizer="l2"),
            [(2,)],
            lambda rng, n, s: rng.integers(0, 6, size=(n,) + s),
            "int64",
        ),
        (
            dict(input_dim=5, output_dim=2, mask_zero=True),
            [(3,)],
            lambda rng, n, s: rng.integers(0, 5, size=(n,) + s),
            "int64",
        ),
    ],
    "SpatialDropout1D": [(dict(rate=0.3, seed=5), [(6, 3)])],
    "SpatialDropout2D": [(dict(rate=0.2), [(4, 3, 2)])],
    "SpatialDropout3D": [(dict(rate=0.1, seed=2), [(2, 3, 2, 2)])],
    "Masking": [
        (
            dict(mask_value=0.5),
            [(4, 3)],
            lambda rng, n, s: np.where(rng.random((n, s[0], 1)) < 0.3, 0.5, rng.normal(size=(n,) + s)),
            "float32",
        )
    ],
    "Imputation": [
        (
            dict(strategy="constant", fill_value=-1.0, add_indicator=True),
            [(3,)],
            lambda rng, n, s: np.where(rng.random((n,) + s) < 0.3, np.nan, rng.normal(size=(n,) + s)),
            "float32",
        )
    ],
    "MonotonicDense": [
        (dict(units=4, activation="relu", monotonicity_indicator=[1, -1, 0]), [(3,)]),
        (dict(units=3, activation="tanh", is_convex=True, use_bias=False, kernel_regularizer="l2"), [(2,)]),
        (dict(units=2, activation="elu", monotonicity_indicator=-1, activation_weights=[1, 2, 1]), [(4,)]),
    ],
    "Calibration": [
        (dict(method=m, num_knots=k), [(1,)], lambda rng, n, s: rng.uniform(0.01, 0.99, size=(n,) + s), "float32")
        for m, k in (("isotonic", 5), ("platt", None), ("beta", None))
    ],
    "WoEEncoding": [
        (
            dict(
                special_values=[9.0],
                binning_kind="numeric",
                bin_trend="ascending",
                bin_splits=[-0.5, 0.5],
                bin_nonevent=[30.0, 20.0, 10.0, 4.0, 6.0],
                bin_event=[3.0, 5.0, 9.0, 1.0, 0.0],
            ),
            [(1,)],
            lambda rng, n, s: np.where(
                rng.random((n,) + s) < 0.2, np.nan, np.where(rng.random((n,) + s) < 0.2, 9.0, rng.normal(size=(n,) + s))
            ),
            "float32",
        ),
        (
            dict(
                special_values=["n/a"],
                binning_kind="categorical",
                bin_trend="ascending",
                bin_categories=[["a", "b"], ["c"]],
                bin_nonevent=[30.0, 10.0, 4.0, 6.0],
                bin_event=[3.0, 9.0, 1.0, 2.0],
            ),
            [(1,)],
            lambda rng, n, s: np.array(
                [[["a", "b", "c", "z", "n/a", None][i]] for i in rng.integers(0, 6, size=n)], dtype=object
            ),
            "string",
        ),
    ],
    "Conv1D": [
        (dict(filters=3, kernel_size=3, padding="causal", dilation_rate=2, activation="relu"), [(7, 2)]),
        (dict(filters=2, kernel_size=2, strides=2, use_bias=False, kernel_regularizer="l2"), [(6, 3)]),
    ],
    "Conv2D": [
        (
            dict(
                filters=3,
                kernel_size=(3, 2),
                strides=(2, 1),
                padding="same",
                activation="tanh",
                bias_initializer="ones",
            ),
            [(5, 4, 2)],
        ),
        (dict(filters=2, kernel_size=2, dilation_rate=2, kernel_constraint=mf.constraints.MaxNorm(1.5)), [(6, 6, 1)]),
    ],
    "MaxPooling1D": [(dict(pool_size=3, strides=2, padding="same"), [(7, 2)])],
    "MaxPooling2D": [(dict(pool_size=(2, 3), padding="same"), [(5, 7, 2)])],
    "AveragePooling1D": [(dict(pool_size=2), [(6, 3)])],
    "AveragePooling2D": [(dict(pool_size=3, strides=(1, 2), padding="same"), [(4, 5, 2)])],
    "GlobalMaxPooling1D": [(dict(), [(5, 3)])],
    "GlobalMaxPooling2D": [(dict(keepdims=True), [(3, 4, 2)])],
    "GlobalAveragePooling1D": [(dict(keepdims=True), [(5, 3)])],
    "GlobalAveragePooling2D": [(dict(), [(3, 4, 2)])],
    "Flatten": [(dict(), [(3, 4, 2)])],
    "Reshape": [(dict(target_shape=(-1, 2)), [(3, 4)])],
    "Permute": [(dict(dims=(2, 1)), [(3, 4)])],
    "RepeatVector": [(dict(n=3), [(4,)])],
    "ZeroPadding1D": [(dict(padding=(1, 2)), [(4, 3)])],
    "ZeroPadding2D": [(dict(padding=((1, 0), (2, 1))), [(3, 3, 2)])],
    "LSTM": [
        (dict(units=3, return_sequences=True, go_backwards=True, recurrent_regularizer="l2"), [(4, 2)]),
        (dict(units=2, unit_forget_bias=False, bias_initializer="ones", activation="relu"), [(3, 2)]),
    ],
    "GRU": [(dict(units=3, recurrent_activation="tanh", kernel_constraint=mf.constraints.MaxNorm(2.0)), [(4, 2)])],
    "SimpleRNN": [
        (dict(units=3, use_bias=False, return_sequences=True, recurrent_initializer="glorot_uniform"), [(4, 2)])
    ],
    "MultiHeadAttention": [
        (dict(num_heads=2, key_dim=3, use_causal_mask=True, seed=9), [(5, 4), (5, 4)]),
        (
            dict(
                num_heads=1,
                key_dim=2,
                value_dim=3,
                output_shape=5,
                use_bias=False,
                dropout=0.1,
                kernel_regularizer="l2",
            ),
            [(4, 3), (6, 2), (6, 5)],
        ),
    ],
    "TimeDistributed": [
        (dict(layer=Dense(3, activation="relu", kernel_regularizer="l2", name="inner_dense")), [(4, 2)])
    ],
    "Bidirectional": [
        (dict(layer=L.LSTM(3, return_sequences=True, name="inner_lstm")), [(4, 2)]),
        (dict(layer=L.GRU(2, name="inner_gru"), merge_mode="mul"), [(4, 3)]),
    ],
}


def _exported_layers():
    return sorted(
        n
        for n in L.__all__
        if isinstance(getattr(L, n), type) and issubclass(getattr(L, n), L.Layer) and getattr(L, n) is not L.Layer
    )


def test_layer_examples_cover_every_exported_layer():
    missing = [n for n in _exported_layers() if n not in LAYER_EXAMPLES]
    assert not missing, f"add round-trip examples for new layers {missing} to LAYER_EXAMPLES"


def _json(x):
    return json.loads(json.dumps(x))


def test_input_layer_round_trips():
    layer = L.InputLayer(shape=(3, 2), name="entry")
    restored = L.InputLayer.from_config(_json(layer.get_config()))
    assert type(restored) is L.InputLayer and restored.shape == (3, 2) and restored.name == "entry"
    assert _json(restored.get_config()) == _json(layer.get_config())


@pytest.mark.parametrize("name, k", [(n, k) for n in _exported_layers() for k in range(len(LAYER_EXAMPLES.get(n, [])))])
def test_every_layer_round_trips(name, k, rng):
    """get_config -> JSON -> from_config gives the same config, and a trained model holding the
    layer predicts bit for bit after a trip through the .maas format."""
    cls = getattr(L, name)
    assert registry.get("layer", name) is cls
    kwargs, shapes, *extra = LAYER_EXAMPLES[name][k]
    make, dtype = extra if extra else (lambda rng, n, s: rng.normal(size=(n,) + s).astype(np.float32), "float32")
    layer = cls(name=f"the_{name.lower()}_{k}", **kwargs)
    cfg = _json(layer.get_config())
    restored = objects.make_layer({"class_name": name, "config": cfg}, "test", "layer")
    assert type(restored) is cls and _json(restored.get_config()) == cfg and restored.name == layer.name
    assert _json(cls.from_config(cfg).get_config()) == cfg  # the layer's own from_config, too
    inputs = [Input(shape=s, name=f"in{i}", dtype=dtype) for i, s in enumerate(shapes)]
    out = layer(inputs[0] if len(inputs) == 1 else inputs)
    if len(out.shape) > 2:  # sequences and images: one row of features per sample for the head
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Flatten drops a mask (Masking, mask_zero) with Keras's warning
            out = L.Flatten(name="flat")(out)
    model = Model(inputs=inputs, outputs=Dense(2, name="head")(out))
    model.compile("adam", "mse")
    xs = [make(rng, 40, s) for s in shapes]
    xs = xs[0] if len(xs) == 1 else xs
    model.fit(xs, rng.normal(size=(40, 2)).astype(np.float32), epochs=2, batch_size=8, verbose=0)
    loaded = from_bytes(model.to_bytes())
    assert [type(l) for l in loaded.layers] == [type(l) for l in model.layers]
    assert _json(loaded.get_layer(layer.name).get_config()) == cfg
    assert _same_weights(loaded, model)
    assert np.array_equal(loaded.predict(xs), model.predict(xs))


def test_custom_layer_subclass_cannot_be_saved():
    class MyDense(Dense):
        pass

    model = Sequential([MyDense(2, input_dim=3)])
    with pytest.raises(ValueError, match=r"cannot save layer 'my_dense' of class .*MyDense: only maasfin's own"):
        model.to_bytes()


def test_duplicate_layer_names_cannot_be_saved():
    model = Sequential([Dense(2, input_dim=3, name="same"), Dense(1, name="same")])
    with pytest.raises(ValueError, match=r"several layers are named \['same'\]"):
        model.to_bytes()


# -- in-memory transport, pickle, copy -------------------------------------------------------------
def test_to_bytes_pickle_and_deepcopy(rng):
    model, x, y = _trained_sequential(rng)
    for clone in (
        from_bytes(model.to_bytes()),
        mf.from_bytes(bytearray(model.to_bytes())),
        pickle.loads(pickle.dumps(model)),
        copy.deepcopy(model),
        copy.copy(model),
    ):
        assert clone is not model and type(clone) is Sequential
        assert np.array_equal(clone.predict(x), model.predict(x)) and _same_weights(clone, model)
        assert clone.optimizer.iterations == model.optimizer.iterations
    with pytest.raises(TypeError, match="expected bytes, got str"):
        from_bytes("credit.maas")


def test_unbuilt_model_pickles_by_config(rng):
    model = Sequential([Dense(3, name="h"), Dropout(0.5, seed=3, name="d"), Dense(1, name="o")], name="late")
    model.compile(mf.optimizers.RMSprop(0.02), "mse", metrics=["mae"])
    payload = pickle.dumps(model)
    assert b"weights.safetensors" not in payload and b"PK\x03\x04" not in payload
    clone = pickle.loads(payload)
    assert not clone.built and clone.compiled and clone.name == "late"
    assert clone.get_config() == json.loads(json.dumps(model.get_config()))
    assert clone.optimizer.get_config() == model.optimizer.get_config()
    functional = Model(inputs=(i := Input(shape=(2,), name="i")), outputs=Dense(1, name="o2")(i))
    assert not functional.built
    fclone = copy.deepcopy(functional)
    assert not fclone.built and fclone.get_config() == json.loads(json.dumps(functional.get_config()))


def test_loading_keeps_names_and_does_not_move_the_seed_stream(rng):
    model, x, _ = _trained_sequential(rng)
    blob = model.to_bytes()
    mf.utils.set_random_seed(11)
    expected = [mf.seeds.draw_seed() for _ in range(3)]
    mf.utils.set_random_seed(11)
    first, second = from_bytes(blob), from_bytes(blob)  # the same names twice in one process
    assert [mf.seeds.draw_seed() for _ in range(3)] == expected
    # New automatically named layers may reuse a loaded model's names ("dense"): models are independent.
    fresh = Sequential([Dense(2, input_dim=4), Dense(1)])
    assert np.array_equal(from_bytes(fresh.to_bytes()).predict(x), fresh.predict(x))
    assert [l.name for l in first.layers] == [l.name for l in second.layers] == [l.name for l in model.layers]
    assert np.array_equal(first.predict(x), second.predict(x))


# -- atomic writes -----------------------------------------------------------------------------------
def test_a_crash_mid_save_leaves_the_previous_model(tmp_path, rng, monkeypatch):
    old, x, y = _trained_sequential(rng)
    path = tmp_path / "credit.maas"
    old.save(path)
    old_bytes = path.read_bytes()
    new, _, _ = _trained_sequential(rng, epochs=4)
    calls = []
    real = archive.write_member

    def crash_on_third_member(zf, name, data):
        calls.append(name)
        if len(calls) == 3:
            raise OSError("disk full (simulated)")
        real(zf, name, data)

    monkeypatch.setattr(archive, "write_member", crash_on_third_member)
    with pytest.raises(OSError, match="simulated"):
        new.save(path)
    assert calls == ["config.json", "weights.safetensors", "optimizer.safetensors"]
    assert path.read_bytes() == old_bytes and os.listdir(tmp_path) == ["credit.maas"]
    assert np.array_equal(load_model(path).predict(x), old.predict(x))
    monkeypatch.setattr(archive, "write_member", real)
    new.save(path)
    assert np.array_equal(load_model(path).predict(x), new.predict(x))
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o666 & ~archive.UMASK)


def test_a_process_killed_mid_save_leaves_the_previous_model(tmp_path):
    script = textwrap.dedent("""
        import os, signal, sys
        import numpy as np
        import maasfin as mf
        from maasfin.layers import Dense
        from maasfin.models import Sequential
        mf.utils.set_random_seed(0)
        path = sys.argv[1]
        model = Sequential([Dense(64, activation="relu", input_dim=32), Dense(1)])
        model.build((None, 32))
        model.save(path)
        np.save(path + ".x.npy", np.ones((3, 32), np.float32))
        np.save(path + ".p.npy", model.predict(np.ones((3, 32), np.float32)))
        from maasfin.saving import archive
        model.set_weights([w + 1 for w in model.get_weights()])
        real = archive.write_member
        def die_midway(zf, name, data):
            real(zf, name, data[: len(data) // 2])  # half a member reaches the disk
            zf.fp.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        archive.write_member = die_midway
        model.save(path)
    """)
    path = tmp_path / "m.maas"
    proc = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    leftovers = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert len(leftovers) == 1 and leftovers[0].startswith(".m.maas.")  # the torn temporary file, not the model
    loaded = load_model(path)
    assert np.array_equal(loaded.predict(np.load(f"{path}.x.npy")), np.load(f"{path}.p.npy"))
    with pytest.raises(ModelFileError):
        load_model(tmp_path / leftovers[0])


# -- the safe loader: each hostile input gets its own clear ModelFileError ---------------------------
def _expect(data: bytes, match: str):
    with pytest.raises(ModelFileError, match=match) as info:
        from_bytes(data)
    assert info.value.__cause__ is None  # a deliberate check, not the catch-all
    return info.value


def test_rejects_non_zip_and_truncated_archives(blob):
    _expect(b"", r"model bytes: is not a maasfin model file \(not a zip archive\)")
    _expect(pickle.dumps({"a": 1}), "not a zip archive")
    _expect(b"PK\x03\x04" + b"\x00" * 100, r"is not a valid zip archive \(truncated or corrupt")
    for cut in (len(blob) // 3, len(blob) - 30):
        _expect(blob[:cut], "is not a valid zip archive")


def test_rejects_bit_flips_by_hash_or_crc(blob):
    m = _members(blob)
    tampered = bytearray(m["weights.safetensors"])
    tampered[-3] ^= 0x10
    _expect(
        _pack({**m, "weights.safetensors": bytes(tampered)}, fix_hashes=False),
        r"member 'weights.safetensors' does not match its SHA-256 in metadata.json",
    )
    raw = bytearray(blob)
    start = raw.find(b"F32")  # inside the stored weights member: the zip CRC catches it first
    raw[start] ^= 0x01
    _expect(bytes(raw), r"member 'weights.safetensors' is corrupt: Bad CRC-32")


@pytest.mark.parametrize(
    "name, match",
    [
        ("../../etc/cron.d/evil", r"unsafe name '../../etc/cron.d/evil'"),
        ("/etc/passwd", r"unsafe name '/etc/passwd'"),
        ("C:/Windows/evil.dll", r"unsafe name 'C:/Windows/evil.dll'"),
        ("model.pkl", r"unexpected member 'model.pkl'; allowed members: config.json, weights.safetensors"),
        ("assets/", r"unexpected member 'assets/'"),
    ],
)
def test_rejects_hostile_member_names(blob, name, match):
    _expect(_pack(list(_members(blob).items()) + [(name, b"payload")]), match)


def test_rejects_duplicate_and_missing_members(blob):
    m = _members(blob)
    _expect(_pack(list(m.items()) + [("config.json", m["config.json"])]), r"duplicate member 'config.json'")
    _expect(
        _pack({k: v for k, v in m.items() if k != "weights.safetensors"}, fix_hashes=False),
        r"is missing member\(s\) \['weights.safetensors'\]",
    )
    _expect(
        _pack({k: v for k, v in m.items() if k != "optimizer.safetensors"}, fix_hashes=False),
        r"metadata.json sha256 lists member 'optimizer.safetensors', which the archive does not hold",
    )


def test_rejects_zip_bombs_and_oversized_members(blob, monkeypatch):
    m = _members(blob)
    bomb = b" " * (17 << 20)  # 17 MiB of JSON whitespace deflates to ~17 KiB
    _expect(
        _pack({**m, "config.json": bomb}, method=zipfile.ZIP_DEFLATED),
        r"member 'config.json' declares 17825792 bytes, more than the limit of 16777216",
    )
    # Under the size limit, but 3 MiB inflated from ~3 KiB: the reader counts what it inflates.
    _expect(
        _pack({**m, "config.json": m["config.json"] + b" " * (3 << 20)}, method=zipfile.ZIP_DEFLATED),
        r"member 'config.json' expands more than 100:1 \(a zip bomb\?\)",
    )
    monkeypatch.setitem(saving.LIMITS, "weights.safetensors", 100)
    _expect(blob, r"member 'weights.safetensors' declares \d+ bytes, more than the limit of 100")
    monkeypatch.setitem(saving.LIMITS, "archive", 1000)
    _expect(blob, r"is \d+ bytes, more than the limit of 1000")


def _set_declared_size(raw: bytearray, name: str, size: int) -> None:
    """Rewrites a member's uncompressed size in its local header and central directory entry."""
    info = next(i for i in zipfile.ZipFile(io.BytesIO(bytes(raw))).infolist() if i.filename == name)
    raw[info.header_offset + 22 : info.header_offset + 26] = size.to_bytes(4, "little")
    entry = raw.find(b"PK\x01\x02")
    while raw[entry + 46 : entry + 46 + len(name)] != name.encode():
        entry = raw.find(b"PK\x01\x02", entry + 4)
    raw[entry + 24 : entry + 28] = size.to_bytes(4, "little")


def test_rejects_headers_that_misstate_sizes(blob):
    m = _members(blob)
    for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raw = bytearray(_pack(m, method=method))
        _set_declared_size(raw, "config.json", len(m["config.json"]) - 10)  # understated: stops early, CRC fails
        _expect(bytes(raw), r"member 'config.json' is corrupt: Bad CRC-32")
    raw = bytearray(_pack(m, method=zipfile.ZIP_DEFLATED))
    _set_declared_size(raw, "config.json", len(m["config.json"]) + 1000)  # overstated: the stream ends first
    _expect(bytes(raw), r"member 'config.json' (is corrupt|holds \d+ bytes but its header says)")


def test_rejects_encryption_and_unknown_compression(blob):
    raw = bytearray(_pack(_members(blob)))
    entry = raw.find(b"PK\x01\x02")
    raw[entry + 8] |= 0x01  # "encrypted" flag of the first central directory entry
    _expect(bytes(raw), r"member 'config.json' is encrypted")
    _expect(_pack(_members(blob), method=zipfile.ZIP_BZIP2), r"uses unsupported compression method 12")


def test_rejects_other_formats_and_versions(blob):
    _expect(
        _edit_json(blob, "metadata.json", lambda d: d.update(format_version=2)),
        r"was written in model format version 2 by a newer maasfin .*upgrade maasfin",
    )
    _expect(
        _edit_json(blob, "metadata.json", lambda d: d.update(format_version="1")),
        r"has unknown model format version '1'",
    )
    _expect(
        _edit_json(blob, "metadata.json", lambda d: d.update(format="keras")),
        r"metadata.json format is 'keras', not 'maasfin.model'",
    )
    _expect(
        _edit_json(blob, "metadata.json", lambda d: d.update(created="yesterday")),
        r"created 'yesterday' is not an ISO-8601 time",
    )


def test_rejects_bad_json(blob):
    m = _members(blob)
    _expect(_pack({**m, "config.json": b"\x80\x81"}), r"config.json is not UTF-8 text")
    _expect(_pack({**m, "config.json": b'{"model": NaN}'}), r"config.json is not valid JSON: NaN is not allowed")
    _expect(_pack({**m, "config.json": b'{"a": 1, "a": 2}'}), r"duplicate key 'a'")
    _expect(_pack({**m, "config.json": b"[" * 100000}), r"config.json is nested too deeply")
    _expect(_pack({**m, "config.json": b'{"x": ' + b"9" * 30 + b"}"}), r"integer with 30 digits is too large")
    _expect(_pack({**m, "config.json": b'{"x": 1e999}'}), r"number 1e999 is out of range")
    _expect(_pack({**m, "config.json": pickle.dumps(os.system)}), r"config.json is not (UTF-8 text|valid JSON)")


def test_class_names_resolve_only_through_the_allowlist(blob):
    for name in ("os.system", "Lambda", "Layer", "__import__", "TFOpLambda"):

        def edit(d, name=name):
            d["model"]["config"]["layers"][0]["class_name"] = name

        _expect(_edit_json(blob, "config.json", edit), re.escape(f"layer 0 names unknown class '{name}'"))

    def bad_opt(d):
        d["compile_config"]["optimizer"]["class_name"] = "Optimizer"

    _expect(_edit_json(blob, "config.json", bad_opt), r"names unknown class 'Optimizer'; allowed: Adagrad, Adam")

    def bad_schedule(d):
        d["compile_config"]["optimizer"]["config"]["learning_rate"] = {
            "class_name": "LearningRateSchedule",
            "config": {},
        }

    _expect(_edit_json(blob, "config.json", bad_schedule), r"schedule names unknown class 'LearningRateSchedule'")

    def bad_loss(d):
        d["compile_config"]["loss"] = {"class_name": "eval", "config": {}}

    _expect(_edit_json(blob, "config.json", bad_loss), r"compile_config.loss names unknown class 'eval'")

    def bad_metric(d):
        d["compile_config"]["metrics"] = ["__import__('os')"]

    _expect(_edit_json(blob, "config.json", bad_metric), r"unknown metric \"__import__\('os'\)\"")


def test_rejects_configs_that_do_not_round_trip(blob):
    def coerced(d):
        d["model"]["config"]["layers"][0]["config"]["trainable"] = 2

    _expect(
        _edit_json(blob, "config.json", coerced),
        r"layer 0 config is not one maasfin writes: field\(s\) \['trainable'\] do not round-trip "
        r"\(file: \[2\], as constructed: \[True\]\)",
    )

    def nested(d):
        d["model"]["config"]["layers"][0]["config"]["activation"] = {"class_name": "L1", "config": {}}

    _expect(
        _edit_json(blob, "config.json", nested),
        r"layer 0 config field 'activation' holds an object; only regularizers and constraints may",
    )

    def bad_regularizer(d):
        d["model"]["config"]["layers"][0]["config"]["kernel_regularizer"] = {
            "class_name": "Regularizer",
            "config": {"l1": 1.0},
        }

    _expect(
        _edit_json(blob, "config.json", bad_regularizer),
        r"layer 0 kernel_regularizer names unknown class 'Regularizer'; allowed: L1, L1L2, L2",
    )

    def extra(d):
        d["model"]["config"]["layers"][0]["config"]["units"] = "8"

    _expect(_edit_json(blob, "config.json", extra), r"Dense\) has an invalid config: Dense 'dense': units")

    def unknown_field(d):
        d["model"]["config"]["exec"] = "print(1)"

    _expect(_edit_json(blob, "config.json", unknown_field), r"Sequential config has unknown field\(s\) \['exec'\]")


def test_rejects_weights_that_do_not_fit_the_architecture(blob):
    def grow(d):  # a huge layer must be refused before anything is allocated
        d["model"]["config"]["layers"][0]["config"]["units"] = 1_000_000_000

    _expect(
        _edit_json(blob, "config.json", grow),
        r"weight 'dense/kernel' has shape \(4, 8\), the architecture needs \(4, 1000000000\)",
    )

    def giant_input(d):
        d["model"]["config"]["input_shape"] = [2**31, 2**31]

    _expect(_edit_json(blob, "config.json", giant_input), r"Sequential input_shape\[0\] must be in \[1, 2147483647\]")
    _expect(
        _edit_weights(blob, lambda t: {**t, "dense/kernel": t["dense/kernel"].astype(np.float16)}),
        r"tensor 'dense/kernel' has dtype 'F16'; only F32",
    )
    _expect(
        _edit_weights(blob, lambda t: {**t, "dense/kernel": t["dense/kernel"][:3]}),
        r"weight 'dense/kernel' has shape \(3, 8\), the architecture needs \(4, 8\)",
    )
    _expect(
        _edit_weights(blob, lambda t: {k: v for k, v in t.items() if k != "dense_1/bias"}),
        r"missing \['dense_1/bias'\], unexpected \[\]",
    )
    _expect(
        _edit_weights(blob, lambda t: {**t, "dense/kernel": np.full((4, 8), np.nan, np.float32)}),
        r"weights are invalid: layer 'dense' weight 'kernel' contains NaN or infinity",
    )


def test_rejects_malformed_safetensors(blob):
    m = _members(blob)
    w = m["weights.safetensors"]
    n = int.from_bytes(w[:8], "little")
    _expect(
        _pack({**m, "weights.safetensors": (10**12).to_bytes(8, "little") + w[8:]}),
        r"weights.safetensors has an invalid header length 1000000000000",
    )
    header = json.loads(w[8 : 8 + n])
    header["dense/kernel"]["data_offsets"][1] += 4
    body = json.dumps(header).encode()
    _expect(
        _pack({**m, "weights.safetensors": len(body).to_bytes(8, "little") + body + w[8 + n :]}),
        r"tensor 'dense/kernel' spans 132 bytes but shape \[4, 8\] needs 128",
    )
    _expect(_pack({**m, "weights.safetensors": w + b"\x00" * 8}), r"has 8 bytes after its last tensor")


def test_rejects_bad_optimizer_state(blob):
    _expect(
        _edit_weights(blob, lambda t: {**t, "m": t["m"][:-1]}, member="optimizer.safetensors"),
        r"optimizer slot 'm' has shape \(\d+,\), expected \(\d+,\)",
    )
    _expect(
        _edit_weights(blob, lambda t: {**t, "extra": t["m"]}, member="optimizer.safetensors"),
        r"holds slots \['extra', 'm', 'v', 'v_hat'\], Adam has \['m', 'v', 'v_hat'\]",
    )

    def swap(d):
        d["compile_config"]["optimizer"] = {"class_name": "SGD", "config": mf.optimizers.SGD().get_config()}

    _expect(
        _edit_json(blob, "config.json", swap),
        r"holds the state of a 'Adam' optimizer, but the model is compiled with SGD",
    )
    # compile=False never reads it.
    assert from_bytes(_edit_json(blob, "config.json", swap), compile=False).optimizer is None


def test_file_level_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.maas")
    (tmp_path / "dir.maas").mkdir()
    with pytest.raises(ModelFileError, match=r"model file '.*dir.maas': is not a regular file"):
        load_model(tmp_path / "dir.maas")
    os.mkfifo(tmp_path / "fifo.maas")  # would block a naive open() forever
    with pytest.raises(ModelFileError, match="is not a regular file"):
        load_model(tmp_path / "fifo.maas")
    with pytest.raises(ValueError, match="custom_objects are not supported"):
        load_model(tmp_path / "x.maas", custom_objects={"Evil": object})


# -- the demo ----------------------------------------------------------------------------------------
def test_demo_reloads_and_scores_identically(capsys):
    from maasfin import demo

    result = demo.run(verbose=0)
    out = capsys.readouterr().out
    assert result["reloaded_identical"] is True
    assert "reloaded: the reloaded model scores the same 5 applicants identically (bit for bit)." in out
