"""Writing Keras 3 files (keras_export.py): `.keras`, legacy `.h5`, `.weights.h5`. These tests
need h5py, not Keras. Every Keras-written fixture (tests/fixtures/keras) is loaded in maasfin and
written back; the written config.json and model.weights.h5 must be what Keras wrote, field by
field and dataset by dataset, up to the normalisations listed in `_normalise` (each one a field
Keras records but does not read back, or records in one of two forms it reads the same way).
tests/fixtures/keras/check_written_files.py checks the written files with real Keras."""

import glob
import io
import json
import os
import zipfile

import h5py
import numpy as np
import pytest

import maasfin
from maasfin import layers as L
from maasfin import registry
from maasfin.callbacks import ModelCheckpoint
from maasfin.models import load_model

HERE = os.path.join(os.path.dirname(__file__), "fixtures", "keras")
FIXTURES = sorted(
    [os.path.join(HERE, "seq.keras"), os.path.join(HERE, "fun.keras")]
    + glob.glob(os.path.join(HERE, "layers", "*.keras"))
)
IDS = [os.path.splitext(os.path.basename(f))[0] for f in FIXTURES]


def _config(path):
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("config.json"))


def _datasets(blob_or_path, skip=("optimizer",)):
    """{HDF5 path: array} and the set of group paths of an HDF5 file."""
    f = h5py.File(io.BytesIO(blob_or_path) if isinstance(blob_or_path, bytes) else blob_or_path, "r")
    data, groups = {}, set()

    def visit(name, obj):
        if name.split("/")[0] in skip:
            return
        if isinstance(obj, h5py.Dataset):
            data[name] = obj[()]
        else:
            groups.add(name)

    f.visititems(visit)
    return data, groups


def _mha_call(node):
    """A MultiHeadAttention call as {role: source layer}: Keras records it as the user wrote it
    (positionally or by keyword); maasfin writes args [query, value] and the rest by keyword."""
    roles = dict(zip(("query", "value", "key"), node["args"]))
    roles.update(node["kwargs"])
    return {k: (v["config"]["keras_history"] if isinstance(v, dict) else v) for k, v in roles.items()}


def _normalise(v, key=None):
    """Removes what Keras records but never reads back, and unifies two spellings Keras reads alike:
    - shared_object_id: the Python id() of an object Keras saw twice (a different number every run);
    - LayerNormalization's axis: Keras writes -1 or [-1] depending on whether the layer was built
      when the config was taken; both are read as the same axis."""
    if isinstance(v, dict):
        out = {k: _normalise(x, k) for k, x in v.items() if k != "shared_object_id"}
        if out.get("class_name") == "LayerNormalization" and isinstance(out.get("config"), dict):
            axis = out["config"].get("axis")
            out["config"]["axis"] = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        if out.get("class_name") == "MultiHeadAttention" and "inbound_nodes" in out:
            out["inbound_nodes"] = [_mha_call(n) for n in out["inbound_nodes"]]
        return out
    if isinstance(v, list):
        return [_normalise(x) for x in v]
    return v


@pytest.mark.parametrize("path", FIXTURES, ids=IDS)
def test_written_config_is_the_one_keras_wrote(path, tmp_path):
    model = load_model(path)
    out = tmp_path / "m.keras"
    model.save(out)
    keras_cfg, ours = _normalise(_config(path)), _normalise(_config(out))
    # The compile config: Keras writes the loss as the identifier the user gave
    # ("binary_crossentropy"), maasfin the equivalent Keras loss object, named so; jit_compile is a
    # backend hint (True under Keras's jax backend). Everything else must be equal.
    kcc, occ = keras_cfg.pop("compile_config"), ours.pop("compile_config")
    if kcc:
        assert occ["loss"]["module"] == "keras.losses" and occ["loss"]["config"]["name"] == kcc["loss"]
        for key in ("optimizer", "loss_weights", "metrics", "weighted_metrics", "run_eagerly", "steps_per_execution"):
            assert occ[key] == kcc[key], key
    else:
        assert occ == {}
    mine, theirs = ours["config"].pop("layers"), keras_cfg["config"].pop("layers")
    assert (
        _names(mine) == _names(theirs)
        if not _keyword_attention(path)
        else sorted(_names(mine)) == sorted(_names(theirs))
    )
    theirs = {e["config"]["name"]: e for e in theirs}
    for e in mine:
        assert e == theirs[e["config"]["name"]], e["config"]["name"]
    assert ours == keras_cfg


def _names(entries):
    return [e["config"]["name"] for e in entries]


def _keyword_attention(path) -> bool:
    """Whether a MultiHeadAttention was called with its query by keyword. Keras's model.layers
    order (config.json's layer list, and the numbering of the weights groups) follows the recorded
    call form; maasfin writes the positional form, so Keras orders the written file by the same rule
    on that form (tests/fixtures/keras/check_written_files.py loads it in Keras), and the order is
    then compared as a set."""
    return any(
        e["class_name"] == "MultiHeadAttention" and not e["inbound_nodes"][0]["args"]
        for e in _config(path)["config"]["layers"]
    )


@pytest.mark.parametrize("path", FIXTURES, ids=IDS)
def test_written_weights_are_where_keras_put_them(path, tmp_path):
    model = load_model(path)
    out = tmp_path / "m.keras"
    model.save(out)
    with zipfile.ZipFile(path) as z:
        theirs, their_groups = _datasets(z.read("model.weights.h5"))
    with zipfile.ZipFile(out) as z:
        ours, our_groups = _datasets(z.read("model.weights.h5"))
    assert our_groups == their_groups
    assert sorted(ours) == sorted(theirs)
    for key, value in theirs.items():
        assert ours[key].dtype == np.float32 and ours[key].shape == value.shape, key
        np.testing.assert_array_equal(ours[key], value, err_msg=key)
    # The same file as a Keras weights file.
    model.save_weights(tmp_path / "m.weights.h5")
    w, groups = _datasets(str(tmp_path / "m.weights.h5"))
    assert groups == their_groups and sorted(w) == sorted(theirs)
    assert all(np.array_equal(w[k], theirs[k]) for k in theirs)


@pytest.mark.parametrize("path", FIXTURES, ids=IDS)
def test_written_legacy_h5_matches_keras(path, tmp_path):
    """The legacy file Keras 3 writes for `save("x.h5")`: Keras reads its weights by position, in
    the order of model_weights' layer_names and each layer's weight_names."""
    model = load_model(path)
    out = tmp_path / "m.h5"
    model.save(out)
    theirs, ours = h5py.File(path[: -len(".keras")] + ".h5", "r"), h5py.File(out, "r")
    assert ours.attrs["keras_version"].startswith("3.")
    order = list(ours["model_weights"].attrs["layer_names"])
    assert (
        order == list(theirs["model_weights"].attrs["layer_names"])
        if not _keyword_attention(path)
        else sorted(order) == sorted(theirs["model_weights"].attrs["layer_names"])
    )
    for lname in theirs["model_weights"].attrs["layer_names"]:
        lname = lname.decode() if isinstance(lname, bytes) else lname
        tw = [theirs["model_weights"][lname][n][()] for n in theirs["model_weights"][lname].attrs["weight_names"]]
        ow = [ours["model_weights"][lname][n][()] for n in ours["model_weights"][lname].attrs["weight_names"]]
        assert len(ow) == len(tw), lname
        for a, b in zip(ow, tw):
            np.testing.assert_array_equal(a, b, err_msg=lname)
    tcfg, ocfg = (_normalise(json.loads(f.attrs["model_config"])) for f in (theirs, ours))
    tl, ol = tcfg["config"].pop("layers"), ocfg["config"].pop("layers")
    assert ocfg == tcfg
    assert sorted(ol, key=lambda e: e["config"]["name"]) == sorted(tl, key=lambda e: e["config"]["name"])


def _native_models():
    """Models built in maasfin: Sequential, and functional with several inputs, Conv1D, LSTM,
    GRU, Bidirectional, MultiHeadAttention (causal and with a key), Conv2D and pooling."""
    maasfin.utils.set_random_seed(5)
    seq = maasfin.Sequential(
        [
            maasfin.Input(shape=(7,), name="features"),
            L.Dense(9, activation="relu", kernel_regularizer=maasfin.regularizers.L2(1e-3), name="hidden"),
            L.BatchNormalization(name="bn"),
            L.Dropout(0.1, name="drop"),
            L.Dense(1, activation="sigmoid", name="score"),
        ],
        name="seq_native",
    )
    a, b = maasfin.Input(shape=(6, 3), name="series"), maasfin.Input(shape=(4,), name="static")
    c = L.Conv1D(4, 3, padding="causal", activation="relu", name="conv")(a)
    r = L.LSTM(5, return_sequences=True, name="lstm")(c)
    bi = L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="sum", name="bigru")(r)
    att = L.MultiHeadAttention(num_heads=2, key_dim=3, name="attn")(bi, bi, use_causal_mask=True)
    k = L.Dense(3, name="key_proj")(bi)
    cross = L.MultiHeadAttention(num_heads=2, key_dim=2, value_dim=3, name="cross")(att, bi, k)
    g = L.GlobalAveragePooling1D(name="gap")(cross)
    h = L.Concatenate(name="cat")([g, L.Dense(3, activation="tanh", name="static_dense")(b)])
    fun = maasfin.Model([a, b], L.Dense(2, activation="softmax", name="out")(h), name="fun_native")
    img = maasfin.Input(shape=(8, 8, 2), name="img")
    x = L.MaxPooling2D(2, name="pool")(L.Conv2D(3, 3, padding="same", activation="relu", name="conv2d")(img))
    cnn = maasfin.Model(img, L.Dense(1, name="y")(L.Flatten(name="flat")(x)), name="cnn")
    rng = np.random.default_rng(0)
    return [
        (seq, rng.normal(size=(5, 7)).astype("float32")),
        (fun, [rng.normal(size=(5, 6, 3)).astype("float32"), rng.normal(size=(5, 4)).astype("float32")]),
        (cnn, rng.normal(size=(5, 8, 8, 2)).astype("float32")),
    ]


@pytest.mark.parametrize("suffix", [".keras", ".h5", ".hdf5"])
def test_native_models_round_trip_bit_identically(tmp_path, suffix):
    for model, x in _native_models():
        want = model.predict(x)
        model.save(tmp_path / f"{model.name}{suffix}")
        back = load_model(tmp_path / f"{model.name}{suffix}")
        assert type(back) is type(model) and [l.name for l in back.layers] == [l.name for l in model.layers]
        np.testing.assert_array_equal(back.predict(x), want)
        for w0, w1 in zip(model.get_weights(), back.get_weights()):
            np.testing.assert_array_equal(w0, w1)


def test_sequential_without_input_and_layer_options(tmp_path):
    """A Sequential model given input_shape on its first layer (Keras writes an InputLayer), an
    activity regularizer (Keras's base-layer field, after dtype), a constraint and a frozen layer."""
    model = maasfin.Sequential(
        [
            L.Dense(
                4,
                input_shape=(3,),
                activity_regularizer=maasfin.regularizers.L2(0.01),
                kernel_constraint=maasfin.constraints.MaxNorm(2.0),
                name="d",
            ),
            L.GaussianDropout(0.1, name="gd"),
            L.Dense(1, name="o", trainable=False),
        ],
        name="plain",
    )
    x = np.random.default_rng(2).normal(size=(6, 3)).astype("float32")
    model.save(tmp_path / "p.keras")
    cfg = _config(tmp_path / "p.keras")
    layers = cfg["config"]["layers"]
    assert [e["class_name"] for e in layers] == ["InputLayer", "Dense", "GaussianDropout", "Dense"]
    assert layers[0]["config"]["batch_shape"] == [None, 3] and cfg["config"]["build_input_shape"] == [None, 3]
    d = layers[1]["config"]
    assert list(d)[:4] == ["name", "trainable", "dtype", "activity_regularizer"] and "input_shape" not in d
    assert d["activity_regularizer"] == {
        "module": "keras.regularizers",
        "class_name": "L2",
        "config": {"l2": 0.01},
        "registered_name": None,
    }
    assert d["kernel_constraint"] == {
        "module": "keras.constraints",
        "class_name": "MaxNorm",
        "config": {"max_value": 2.0, "axis": 0},
        "registered_name": None,
    }
    assert layers[3]["config"]["trainable"] is False and layers[1]["build_config"] == {"input_shape": [None, 3]}
    assert "build_config" not in layers[2]  # built at construction in Keras: no build config
    back = load_model(tmp_path / "p.keras")
    np.testing.assert_array_equal(back.predict(x), model.predict(x))
    assert back.layers[-1].trainable is False and back.layers[0].activity_regularizer is not None


def _preprocessing_model():
    x = np.random.default_rng(1).normal(size=(40, 3)).astype("float32")
    norm = L.Normalization(name="norm")
    norm.adapt(x)
    inp = maasfin.Input(shape=(3,), name="x")
    bins = L.CategoryEncoding(num_tokens=4, output_mode="multi_hot", name="bins")(
        L.Discretization(bin_boundaries=[-0.5, 0.0, 0.5], name="disc")(inp)
    )
    return maasfin.Model(inp, L.Dense(2, name="out")(L.Concatenate(name="cat")([norm(inp), bins])), name="prep"), x


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_preprocessing_layers_are_written_as_keras_writes_them(tmp_path, suffix):
    model, x = _preprocessing_model()
    want = model.predict(x)
    model.save(tmp_path / f"p{suffix}")
    back = load_model(tmp_path / f"p{suffix}")
    np.testing.assert_array_equal(back.predict(x), want)
    if suffix == ".keras":
        cfg = {e["config"]["name"]: e for e in _config(tmp_path / "p.keras")["config"]["layers"]}
        # Keras's own config fields: Discretization has no trainable and a plain dtype string;
        # the boundaries live in the config, not in a variable.
        assert cfg["disc"]["config"] == {
            "bin_boundaries": [-0.5, 0.0, 0.5],
            "num_bins": None,
            "epsilon": 0.01,
            "output_mode": "int",
            "sparse": False,
            "name": "disc",
            "dtype": "float32",
        }
        assert cfg["bins"]["config"]["num_tokens"] == 4 and cfg["bins"]["config"]["output_mode"] == "multi_hot"
        assert cfg["norm"]["config"]["mean"] is None and cfg["norm"]["config"]["invert"] is False
        with zipfile.ZipFile(tmp_path / "p.keras") as z:
            data, groups = _datasets(z.read("model.weights.h5"))
        # An adapted Normalization holds mean, variance and Keras's int count; Discretization nothing.
        assert sorted(k for k in data if k.startswith("layers/normalization/")) == [
            "layers/normalization/vars/0",
            "layers/normalization/vars/1",
            "layers/normalization/vars/2",
        ]
        np.testing.assert_array_equal(data["layers/normalization/vars/0"], model.get_layer("norm").get_weights()[0])
        assert data["layers/normalization/vars/2"].dtype == np.int32
        assert "layers/discretization/vars" in groups and not any(k.startswith("layers/discretization/") for k in data)


@pytest.mark.parametrize("cls", ["IntegerLookup", "Hashing"])
def test_tensorflow_only_preprocessing_is_refused(tmp_path, cls):
    inp = maasfin.Input(shape=(1,), dtype="int64", name="code")
    layer = (
        L.IntegerLookup(vocabulary=[3, 7], name="lookup")
        if cls == "IntegerLookup"
        else L.Hashing(num_bins=4, name="lookup")
    )
    model = maasfin.Model(inp, L.Dense(1, name="d")(layer(inp)))
    with pytest.raises(
        ValueError,
        match=rf"cannot write layer 'lookup' \({cls}\) to a Keras file: maasfin does not "
        rf"write {cls} to Keras files: Keras 3's {cls} needs TensorFlow",
    ):
        model.save(tmp_path / "m.keras")
    assert not os.path.exists(tmp_path / "m.keras")


def test_string_inputs_are_refused(tmp_path):
    inp = maasfin.Input(shape=(1,), dtype="string", name="city")
    model = maasfin.Model(inp, L.Dense(1, name="d")(L.StringLookup(vocabulary=["a", "b"], name="lookup")(inp)))
    with pytest.raises(
        ValueError,
        match=r"cannot write input 'city' to a Keras file: Keras models take no string "
        r"inputs .*save the model as .maas instead",
    ):
        model.save(tmp_path / "m.h5")
    assert not os.path.exists(tmp_path / "m.h5")


def test_keras_weights_files_round_trip(tmp_path):
    for model, x in _native_models():
        want = model.predict(x)
        model.save_weights(tmp_path / "w.weights.h5")
        model.save(tmp_path / "m.keras")
        other = load_model(tmp_path / "m.keras")
        for layer in other.layers:  # scramble, then load the weights file back
            if layer.get_weights():
                layer.set_weights([np.full_like(w, 0.5) for w in layer.get_weights()])
        assert not np.array_equal(other.predict(x), want)
        other.load_weights(tmp_path / "w.weights.h5")
        np.testing.assert_array_equal(other.predict(x), want)
    # A weights file Keras wrote (the .keras fixture's member) loads into the maasfin model.
    model = load_model(os.path.join(HERE, "seq.keras"))
    with zipfile.ZipFile(os.path.join(HERE, "seq.keras")) as z:
        (tmp_path / "k.weights.h5").write_bytes(z.read("model.weights.h5"))
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    model.load_weights(tmp_path / "k.weights.h5")
    np.testing.assert_allclose(
        model.predict(np.load(os.path.join(HERE, "seq_x.npy"))),
        np.load(os.path.join(HERE, "seq_pred.npy")),
        rtol=1e-5,
        atol=1e-6,
    )


def test_weights_file_of_another_architecture_is_refused(tmp_path):
    (seq, _), (fun, _), _ = _native_models()
    seq.save_weights(tmp_path / "s.weights.h5")
    with pytest.raises(maasfin.saving.ModelFileError, match=r"weights file '.*s.weights.h5'"):
        fun.load_weights(tmp_path / "s.weights.h5")


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_compile_config_round_trips(tmp_path, suffix):
    (seq, x), _, _ = _native_models()
    seq.compile(
        optimizer=maasfin.optimizers.Adam(
            learning_rate=maasfin.optimizers.schedules.ExponentialDecay(3e-3, 20, 0.5, staircase=True),
            beta_1=0.8,
            amsgrad=True,
        ),
        loss=maasfin.losses.BinaryCrossentropy(label_smoothing=0.1),
        metrics=["accuracy", maasfin.metrics.AUC(name="auc")],
    )
    seq.save(tmp_path / f"m{suffix}")
    back = load_model(tmp_path / f"m{suffix}")
    assert type(back.optimizer).__name__ == "Adam"
    opt = back.optimizer.get_config()
    assert opt["learning_rate"] == {
        "class_name": "ExponentialDecay",
        "config": {
            "initial_learning_rate": 3e-3,
            "decay_steps": 20.0,
            "decay_rate": 0.5,
            "staircase": True,
            "name": "ExponentialDecay",
        },
    }
    assert opt["beta_1"] == pytest.approx(0.8) and opt["amsgrad"]
    assert [getattr(m, "name", m) for m, _ in back._metric_ids] == ["accuracy", "auc"]
    assert type(back.loss).__name__ == "BinaryCrossentropy" and back.loss.get_config()["label_smoothing"] == 0.1
    if suffix == ".keras":
        cc = _config(tmp_path / "m.keras")["compile_config"]
        assert cc["optimizer"]["class_name"] == "Adam" and cc["optimizer"]["module"] == "keras.optimizers"
        assert cc["optimizer"]["config"]["beta_1"] == 0.8 and cc["optimizer"]["config"]["use_ema"] is False
        assert cc["metrics"][0] == "accuracy" and cc["metrics"][1]["class_name"] == "AUC"
        assert cc["metrics"][1]["config"]["name"] == "auc"
        assert cc["optimizer"]["config"]["learning_rate"] == {
            "module": "keras.optimizers.schedules",
            "class_name": "ExponentialDecay",
            "registered_name": None,
            "config": {
                "initial_learning_rate": 3e-3,
                "decay_steps": 20.0,
                "decay_rate": 0.5,
                "staircase": True,
                "name": "ExponentialDecay",
            },
        }
    y = (x[:, 0] > 0).astype("float32")
    np.testing.assert_allclose(back.evaluate(x, y, verbose=0), seq.evaluate(x, y, verbose=0), rtol=1e-6)


def test_suffix_dispatch_and_errors(tmp_path):
    (seq, x), _, _ = _native_models()
    seq.save(tmp_path / "m.maas")
    seq.save(tmp_path / "m.keras")
    seq.save(tmp_path / "m.h5")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        assert sorted(z.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        assert json.loads(z.read("metadata.json"))["keras_version"].startswith("3.")
    with zipfile.ZipFile(tmp_path / "m.maas") as z:
        assert "config.json" in z.namelist() and "model.weights.h5" not in z.namelist()
    assert (tmp_path / "m.h5").read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    with pytest.raises(FileExistsError, match="overwrite=False"):
        seq.save(tmp_path / "m.keras", overwrite=False)
    seq.save_weights(tmp_path / "m.weights.h5")
    with pytest.raises(FileExistsError, match="overwrite=False"):
        seq.save_weights(tmp_path / "m.weights.h5", overwrite=False)
    with pytest.raises(ValueError, match=r"metadata is kept in .maas files only"):
        seq.save(tmp_path / "meta.keras", metadata={"owner": "risk"})
    with pytest.raises(ValueError, match=r"must end in '.weights.safetensors' or '.weights.h5', got '.*w.h5'"):
        seq.save_weights(tmp_path / "w.h5")
    # Nothing is left behind by a refused write.
    before = sorted(os.listdir(tmp_path))
    imp = maasfin.Sequential([maasfin.Input(shape=(3,), name="x"), L.Imputation(name="fill"), L.Dense(1, name="d")])
    imp.build()
    with pytest.raises(
        ValueError,
        match=r"cannot write layer 'fill' \(Imputation\) to a Keras file: Imputation has "
        r"no Keras equivalent.*save the model as .maas instead",
    ):
        imp.save(tmp_path / "imp.keras")
    with pytest.raises(ValueError, match=r"layer 'fill' \(Imputation\)"):
        imp.save_weights(tmp_path / "imp.weights.h5")
    with pytest.raises(
        ValueError,
        match=r"load_weights: model '.*' has no Keras layout to match '.*m.weights.h5' "
        r"against \(cannot write layer 'fill' \(Imputation\)",
    ):
        imp.load_weights(tmp_path / "m.weights.h5")
    assert sorted(os.listdir(tmp_path)) == before


def test_maasfin_only_options_are_refused_by_name(tmp_path):
    opt = maasfin.Sequential([maasfin.Input(shape=(3,), name="x"), L.Dense(2, name="d")])
    opt.compile(optimizer="adam", loss=maasfin.losses.MeanSquaredError())
    opt.save(tmp_path / "ok.keras")
    model = maasfin.Sequential([maasfin.Input(shape=(3,), name="x"), L.Dense(2, name="d")])
    model.compile(optimizer="sgd", loss="mse", metrics=[maasfin.metrics.KolmogorovSmirnov()])
    with pytest.raises(
        ValueError,
        match=r"cannot write a metric to a Keras file: metric KolmogorovSmirnov has no "
        r"Keras equivalent",
    ):
        model.save(tmp_path / "ks.keras")
    assert not os.path.exists(tmp_path / "ks.keras")
    # Keras 3's Huber keeps no delta in its config: a non-default delta would be lost, so it is refused.
    model.compile(optimizer="sgd", loss=maasfin.losses.Huber(delta=2.0))
    with pytest.raises(
        ValueError,
        match=r"cannot write the loss to a Keras file: Huber option delta=2.0 is not in "
        r"the config Keras keeps for Huber; save the model as .maas instead",
    ):
        model.save(tmp_path / "huber.h5")
    # A maasfin-only layer option not at its default (a stand-in config: the writer reads get_config).
    bad = maasfin.Sequential([maasfin.Input(shape=(3,), name="x"), L.Dense(2, name="d")])
    bad.build()
    bad.layers[0].get_config = lambda: {"name": "d", "units": 2, "maasfin_extra": 7}
    with pytest.raises(
        ValueError,
        match=r"cannot write layer 'd' \(Dense\) to a Keras file: its option "
        r"maasfin_extra=7 has no Keras equivalent",
    ):
        bad.save(tmp_path / "bad.keras")


def test_missing_h5py_names_the_extra(tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_h5py(name, *args, **kwargs):
        if name == "h5py":
            raise ImportError("No module named 'h5py'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_h5py)
    (seq, _), _, _ = _native_models()
    for write in (
        lambda: seq.save(tmp_path / "m.keras"),
        lambda: seq.save(tmp_path / "m.h5"),
        lambda: seq.save_weights(tmp_path / "m.weights.h5"),
    ):
        with pytest.raises(ImportError, match=r'pip install "maasfin\[keras\]"'):
            write()
    assert os.listdir(tmp_path) == []


def test_model_checkpoint_writes_keras_files(tmp_path):
    (seq, x), _, _ = _native_models()
    y = (x[:, 0] > 0).astype("float32")
    seq.compile(optimizer="adam", loss="binary_crossentropy")
    cbs = [
        ModelCheckpoint(str(tmp_path / "e{epoch}.keras")),
        ModelCheckpoint(str(tmp_path / "w{epoch}.weights.h5"), save_weights_only=True),
    ]
    seq.fit(x, y, epochs=2, verbose=0, callbacks=cbs)
    assert sorted(os.listdir(tmp_path)) == ["e1.keras", "e2.keras", "w1.weights.h5", "w2.weights.h5"]
    back = load_model(tmp_path / "e2.keras")
    np.testing.assert_array_equal(back.predict(x), seq.predict(x))
    back.load_weights(tmp_path / "w1.weights.h5")
    assert not np.array_equal(back.predict(x), seq.predict(x))


def _compile_cases():
    cases = [("optimizer", n) for n in sorted(registry.classes("optimizer"))]
    cases += [("loss", n) for n in sorted(registry.classes("loss"))]
    # Metrics Keras lacks are refused by name (test_maasfin_only_options_are_refused_by_name,
    # tests/test_calibration.py).
    maasfin_only = ("KolmogorovSmirnov", "Gini", "BrierScore", "ExpectedCalibrationError")
    cases += [("metric", n) for n in sorted(registry.classes("metric")) if n not in maasfin_only]
    return cases


@pytest.mark.parametrize("kind,name", _compile_cases())
def test_every_optimizer_loss_and_metric_round_trips(tmp_path, kind, name):
    """Every class maasfin shares with Keras is written as Keras's object config and read back with
    the same config."""
    obj = registry.get(kind, name)()
    model = maasfin.Sequential([maasfin.Input(shape=(3,), name="x"), L.Dense(2, activation="softmax", name="d")])
    model.compile(
        optimizer=obj if kind == "optimizer" else "adam",
        loss=obj if kind == "loss" else "categorical_crossentropy",
        metrics=[obj] if kind == "metric" else None,
    )
    model.save(tmp_path / "m.keras")
    cc = _config(tmp_path / "m.keras")["compile_config"]
    entry = {"optimizer": cc["optimizer"], "loss": cc["loss"], "metric": (cc["metrics"] or [None])[0]}[kind]
    module = {"optimizer": "keras.optimizers", "loss": "keras.losses", "metric": "keras.metrics"}[kind]
    assert entry["class_name"] == name and entry["module"] == module and entry["registered_name"] is None
    back = load_model(tmp_path / "m.keras")
    got = {
        "optimizer": back.optimizer,
        "loss": back.loss,
        "metric": back._metric_ids[0][0] if kind == "metric" else None,
    }[kind]
    assert type(got) is type(obj) and got.get_config() == obj.get_config()


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_recurrent_options_and_state_outputs(tmp_path, suffix):
    """return_state outputs are wired as Keras's [layer, 0, output index]; GRU reset_after=False,
    dropout/recurrent_dropout and SpatialDropout1D are Keras options, written as such."""
    maasfin.utils.set_random_seed(9)
    steps = maasfin.Input(shape=(6, 3), name="steps")
    sp = L.SpatialDropout1D(0.2, name="sdrop")(steps)
    seq_out, h, c = L.LSTM(
        4, return_sequences=True, return_state=True, dropout=0.1, recurrent_dropout=0.1, name="lstm_state"
    )(sp)
    g = L.GRU(3, reset_after=False, name="gru_before")(seq_out)
    model = maasfin.Model(steps, L.Dense(2, name="out")(L.Concatenate(name="cat")([g, h, c])), name="rnn_options")
    x = np.random.default_rng(4).normal(size=(5, 6, 3)).astype("float32")
    model.save(tmp_path / f"r{suffix}")
    back = load_model(tmp_path / f"r{suffix}")
    np.testing.assert_array_equal(back.predict(x), model.predict(x))
    if suffix == ".keras":
        layers = {e["config"]["name"]: e for e in _config(tmp_path / "r.keras")["config"]["layers"]}
        cat = layers["cat"]["inbound_nodes"][0]["args"][0]
        assert [t["config"]["keras_history"] for t in cat] == [
            ["gru_before", 0, 0],
            ["lstm_state", 0, 1],
            ["lstm_state", 0, 2],
        ]
        lstm = layers["lstm_state"]["config"]
        assert lstm["return_state"] is True and lstm["dropout"] == 0.1 and lstm["recurrent_dropout"] == 0.1
        assert layers["gru_before"]["config"]["reset_after"] is False
        assert layers["sdrop"]["config"] == {"rate": 0.2, "seed": None, "name": "sdrop", "dtype": "float32"}
        assert layers["lstm_state"]["inbound_nodes"][0]["kwargs"] == {"training": False, "mask": None}


def test_masks_are_refused_by_layer(tmp_path):
    inp = maasfin.Input(shape=(5, 2), name="steps")
    masked = L.Masking(mask_value=0.0, name="mask")(inp)
    model = maasfin.Model(inp, L.Dense(1, name="d")(L.LSTM(3, name="lstm")(masked)))
    with pytest.raises(
        ValueError,
        match=r"cannot write layer '(mask|lstm)' \((Masking|LSTM)\) to a Keras file: "
        r"maasfin does not write masks .* to Keras files yet; save the model as "
        r".maas instead",
    ):
        model.save(tmp_path / "m.keras")
    assert not os.path.exists(tmp_path / "m.keras")


def test_bad_keras_weights_files_are_model_file_errors(tmp_path):
    (seq, _), _, _ = _native_models()
    (tmp_path / "junk.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    with pytest.raises(maasfin.saving.ModelFileError, match=r"weights file '.*junk.weights.h5'"):
        seq.load_weights(tmp_path / "junk.weights.h5")
    seq.save_weights(tmp_path / "w.weights.h5")
    with h5py.File(tmp_path / "w.weights.h5", "r+") as f:  # a kernel of another shape
        del f["layers/dense/vars/0"]
        f["layers/dense/vars/0"] = np.zeros((7, 3), np.float32)
    with pytest.raises(
        maasfin.saving.ModelFileError,
        match=r"layers/dense/vars/0 has shape \(7, 3\), the "
        r"architecture needs \(7, 9\)",
    ):
        seq.load_weights(tmp_path / "w.weights.h5")
