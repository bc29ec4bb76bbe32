"""Keras files with the sequence, image, attention and merge layers: models built by real Keras
with random weights (tests/fixtures/keras/make_layer_fixtures.py, layers/manifest.json) load in
maasfin and predict what Keras predicted. These tests need h5py, not Keras."""

import io
import json
import os

import h5py
import numpy as np
import pytest
from test_keras_interop import _edit_keras, _edit_weights, _load_bytes

from maasfin.models import load_model
from maasfin.saving import ModelFileError

HERE = os.path.join(os.path.dirname(__file__), "fixtures", "keras", "layers")
with open(os.path.join(HERE, "manifest.json")) as _f:
    MANIFEST = json.load(_f)
MODELS = sorted(MANIFEST["models"])


def _fx(name):
    return os.path.join(HERE, name)


def _inputs(name):
    xs = [np.load(_fx(f)) for f in MANIFEST["models"][name]["inputs"]]
    return xs[0] if len(xs) == 1 else xs


def test_fixtures_come_from_keras_3():
    assert MANIFEST["keras"].startswith("3.") and MANIFEST["backend"] in ("jax", "torch", "tensorflow")
    assert set(MODELS) == {
        "attention",
        "bidirectional",
        "conv1d",
        "conv2d",
        "merging",
        "recurrent",
        "reshaping",
        "text",
        "time_distributed",
    }


@pytest.mark.parametrize("ext", ["keras", "h5"])
@pytest.mark.parametrize("name", MODELS)
def test_predictions_and_weights_equal_keras(name, ext):
    info = MANIFEST["models"][name]
    model = load_model(_fx(f"{name}.{ext}"))
    assert model.name == info["model_name"]
    expected = np.load(_fx(f"{name}_pred.npy"))
    got = model.predict(_inputs(name))
    assert got.shape == expected.shape == tuple(info["output_shape"])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # get_weights: the same layers hold weights, in Keras's order, with Keras's shapes and values.
    weighted = {l.name: l.get_weights() for l in model.layers if l.get_weights()}
    assert sorted(weighted) == sorted(info["weights"])
    for lname, keras_weights in info["weights"].items():
        ours = weighted[lname]
        assert [list(w.shape) for w in ours] == [shape for shape, _ in keras_weights], lname
        np.testing.assert_allclose(
            [np.sum(w, dtype=np.float64) for w in ours],
            [s for _, s in keras_weights],
            rtol=1e-6,
            atol=1e-5,
            err_msg=lname,
        )


@pytest.mark.parametrize("name", MODELS)
def test_weights_follow_the_keras_weight_names(name):
    """Each maasfin weight is exactly the dataset Keras lists at the same position of the layer's
    weight_names in the legacy .h5 (Keras writes them in get_weights order)."""
    model = load_model(_fx(f"{name}.h5"), compile=False)
    with h5py.File(_fx(f"{name}.h5"), "r") as f:
        group = f["model_weights"]
        checked = 0
        for lname in group:
            names = [n.decode() if isinstance(n, bytes) else n for n in group[lname].attrs.get("weight_names", [])]
            if not names:
                continue
            ours = model.get_layer(lname).get_weights()
            assert len(ours) == len(names), lname
            for w, wname in zip(ours, names):
                assert np.array_equal(w, group[lname][wname][()]), f"{lname}: {wname}"
                checked += 1
    assert checked == sum(len(v) for v in MANIFEST["models"][name]["weights"].values())


@pytest.mark.parametrize("name", MODELS)
def test_loaded_model_round_trips_through_maas(name, tmp_path):
    model = load_model(_fx(f"{name}.keras"))
    path = tmp_path / f"{name}.maas"
    model.save(path)
    again = load_model(path)
    x = _inputs(name)
    assert np.array_equal(again.predict(x), model.predict(x))
    assert [type(l) for l in again.layers] == [type(l) for l in model.layers]
    for a, b in zip(again.layers, model.layers):
        assert a.get_config() == b.get_config()
        assert all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))


def test_compile_config_of_a_keras_text_model_is_translated():
    model = load_model(_fx("text.keras"))
    assert type(model.optimizer).__name__ == "Adam" and model.optimizer.learning_rate == pytest.approx(1e-3)
    assert model.loss.name == "binary_crossentropy"
    assert not load_model(_fx("conv1d.keras")).compiled  # Keras writes compile_config {} when never compiled


@pytest.mark.parametrize("ext", ["keras", "h5"])
def test_wrapped_layer_keeps_its_regularizer_and_constraint(ext):
    """Keras stores the wrapped layer twice (forward and backward configs, each with its own
    shared_object_ids); both translate to one maasfin layer with the same penalties."""
    wrapper = load_model(_fx(f"bidirectional.{ext}")).get_layer("bi_gru_sum")
    assert wrapper.merge_mode == "sum" and wrapper.layer.name == "gru"
    for inner in (wrapper.layer, wrapper.backward_layer):
        assert inner.kernel_regularizer.get_config() == {"l2": pytest.approx(0.01)}
        assert inner.recurrent_constraint.get_config() == {"max_value": 3.0, "axis": 0}
    assert [p for p, _, _ in wrapper._param_specs()][::3] == ["forward_gru/kernel", "backward_gru/kernel"]


def _layer_cfg(c, lname):
    return next(e for e in c["config"]["layers"] if e["config"]["name"] == lname)


def _far_from_keras(blob, name):
    got = _load_bytes(blob, ".keras").predict(_inputs(name))
    return not np.allclose(got, np.load(_fx(f"{name}_pred.npy")), rtol=1e-3, atol=1e-3)


def test_the_fixtures_tell_call_and_direction_arguments_apart():
    """The fixtures are sensitive to what is loaded: without the recorded use_causal_mask, or with
    go_backwards or merge_mode changed, maasfin no longer predicts what Keras did."""

    def no_causal(c):
        _layer_cfg(c, "self_attn")["inbound_nodes"][0]["kwargs"]["use_causal_mask"] = False

    assert _far_from_keras(_edit_keras(_fx("attention.keras"), no_causal), "attention")

    def forwards(c):
        _layer_cfg(c, "lstm_back_seq")["config"]["go_backwards"] = False

    assert _far_from_keras(_edit_keras(_fx("recurrent.keras"), forwards), "recurrent")

    def merge_sum(c):
        _layer_cfg(c, "bi_rnn_mul")["config"]["merge_mode"] = "sum"

    assert _far_from_keras(_edit_keras(_fx("bidirectional.keras"), merge_sum), "bidirectional")


def _set(lname, key, value, inner=None):
    def edit(c):
        cfg = _layer_cfg(c, lname)["config"]
        if inner:
            cfg = cfg[inner]["config"]
        cfg[key] = value

    return edit


def _call_kwarg(lname, key, value):
    def edit(c):
        _layer_cfg(c, lname)["inbound_nodes"][0]["kwargs"][key] = value

    return edit


def _class(lname, class_name, inner=None):
    def edit(c):
        entry = _layer_cfg(c, lname)
        if inner:
            entry = entry["config"][inner]
        entry["class_name"] = class_name

    return edit


_UNSUPPORTED = [
    (
        "conv2d",
        _set("same_even", "data_format", "channels_first"),
        r"Keras layer 'same_even' \(Conv2D\) cannot be built in maasfin: .*only data_format='channels_last'",
    ),
    (
        "conv1d",
        _set("pad", "data_format", "channels_first"),
        r"Keras layer 'pad' \(ZeroPadding1D\) uses the Keras option data_format='channels_first', which maasfin "
        "does not support",
    ),
    ("conv1d", _set("same_even", "groups", 2), r"Keras layer 'same_even' \(Conv1D\) .*only groups=1"),
    (
        "conv1d",
        _class("gmax", "GlobalMaxPooling3D"),
        r"layer \d+ is a Keras 'GlobalMaxPooling3D' layer, which maasfin does not support",
    ),
    ("conv1d", _set("same_even", "name", "a/b"), r"is named 'a/b'; Keras layer names cannot contain '/'"),
    ("merging", _set("all", "axis", 1), r"Keras layer 'all' \(Concatenate\) .*only axis=-1"),
    (
        "reshaping",
        lambda c: c["config"].update(layers=c["config"]["layers"][1:], build_input_shape=[None, None, 4]),
        r"Keras Sequential model 'reshape_model' was built on a variable dimension \(per-sample shape \[None, 4\]\)",
    ),
    ("merging", _set("ids", "dtype", "float16"), r"Keras layer 'ids' \(InputLayer\) has dtype 'float16'"),
    (
        "recurrent",
        _set("steps", "batch_shape", [None, None, 3]),
        r"Keras layer 'steps' \(InputLayer\) has a variable dimension \(per-sample shape \[None, 3\]\)",
    ),
    ("recurrent", _set("rnn_seq", "stateful", True), r"Keras layer 'rnn_seq' \(SimpleRNN\) .*stateful=True"),
    (
        "recurrent",
        _set("gru_last", "activation", "softmax"),
        r"Keras layer 'gru_last' \(GRU\) .*activation 'softmax' is not supported in recurrent layers",
    ),
    (
        "bidirectional",
        _set("bi_gru_sum", "merge_mode", None),
        r"Keras layer 'bi_gru_sum' \(Bidirectional\) .*merge_mode must be one of",
    ),
    (
        "bidirectional",
        _set("bi_gru_sum", "units", 5, inner="backward_layer"),
        r"Keras layer 'bi_gru_sum' \(Bidirectional\) has a backward_layer that differs from its layer in "
        r"\['units'\]",
    ),
    (
        "bidirectional",
        _set("bi_gru_sum", "go_backwards", False, inner="backward_layer"),
        r"backward_layer that differs from its layer in \['go_backwards'\]",
    ),
    (
        "bidirectional",
        _set("bi_lstm_concat", "unroll", True, inner="layer"),
        r"Keras layer 'bi_lstm_concat' \(Bidirectional\) has a backward_layer that differs .*\['unroll'\]",
    ),
    (
        "reshaping",
        _class("per_step", "Conv3D", inner="layer"),
        r"Keras layer 'per_step' \(TimeDistributed\) layer is a Keras 'Conv3D' layer, which maasfin does not "
        "support",
    ),
    (
        "reshaping",
        _class("per_step", "Bidirectional", inner="layer"),
        r"Keras layer 'per_step' \(TimeDistributed\) layer is a Keras 'Bidirectional' layer; a wrapper must hold an "
        "ordinary layer",
    ),
    (
        "attention",
        _set("self_attn", "use_gate", True),
        r"Keras layer 'self_attn' \(MultiHeadAttention\) uses the Keras option use_gate=True",
    ),
    (
        "attention",
        _set("self_attn", "attention_axes", [2]),
        r"Keras layer 'self_attn' \(MultiHeadAttention\) .*only attention over the time axis",
    ),
    (
        "attention",
        _call_kwarg("self_attn", "return_attention_scores", "yes"),
        r"Keras layer 'self_attn' is called with return_attention_scores='yes'; expected true or false",
    ),
    (
        "attention",
        _call_kwarg("self_attn", "use_causal_mask", "yes"),
        r"Keras layer 'self_attn' is called with use_causal_mask='yes'",
    ),
    (
        "attention",
        _call_kwarg(
            "cross_attn",
            "query_mask",
            {"class_name": "__keras_tensor__", "config": {"keras_history": ["tokens", 0, 0]}},
        ),
        r"Keras layer 'cross_attn' is called with the argument query_mask=",
    ),
    (
        "conv1d",
        _call_kwarg(
            "same_even", "mask", {"class_name": "__keras_tensor__", "config": {"keras_history": ["series", 0, 0]}}
        ),
        r"Keras layer 'same_even' is called with the argument mask=",
    ),
]


@pytest.mark.parametrize("name,edit,message", _UNSUPPORTED, ids=[f"{n}-{m[:40]}" for n, _, m in _UNSUPPORTED])
def test_unsupported_layers_and_arguments_are_named(name, edit, message):
    with pytest.raises(ModelFileError, match=message):
        _load_bytes(_edit_keras(_fx(f"{name}.keras"), edit), ".keras")


def _edit_legacy(path, edit):
    with open(path, "rb") as f:
        buf = io.BytesIO(f.read())
    with h5py.File(buf, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        edit(cfg)
        f.attrs["model_config"] = json.dumps(cfg)
    return buf.getvalue()


def test_legacy_h5_configs_get_the_same_checks():
    blob = _edit_legacy(_fx("attention.h5"), _set("self_attn", "use_gate", True))
    with pytest.raises(
        ModelFileError,
        match=r"Keras layer 'self_attn' \(MultiHeadAttention\) uses the Keras "
        "option use_gate=True",
    ):
        _load_bytes(blob, ".h5")
    blob = _edit_legacy(_fx("bidirectional.h5"), _set("bi_gru_ave", "units", 4, inner="layer"))
    with pytest.raises(ModelFileError, match=r"backward_layer that differs from its layer in \['units'\]"):
        _load_bytes(blob, ".h5")


def test_nested_weight_groups_are_checked():
    def drop_key_bias(h5):
        del h5["layers/multi_head_attention/key_dense/vars/1"]

    with pytest.raises(
        ModelFileError,
        match=r"model.weights.h5 layers/multi_head_attention holds 7 weights, "
        r"layer 'self_attn' has 8",
    ):
        _load_bytes(_edit_weights(_fx("attention.keras"), drop_key_bias), ".keras")

    def stacked_recurrent_kernel(h5):
        path = "layers/bidirectional/backward_layer/cell/vars/1"
        data = h5[path][()]
        del h5[path]
        h5[path] = np.ascontiguousarray(np.concatenate([data, data], axis=0))

    with pytest.raises(
        ModelFileError,
        match=r"layers/bidirectional/backward_layer/cell/vars/1 has shape \(6, 12\), "
        r"the architecture needs \(3, 12\)",
    ):
        _load_bytes(_edit_weights(_fx("bidirectional.keras"), stacked_recurrent_kernel), ".keras")

    def gap(h5):
        path = "layers/lstm/cell/vars"
        h5[f"{path}/7"] = h5[f"{path}/2"][()]
        del h5[f"{path}/2"]

    with pytest.raises(ModelFileError, match=r"layers/lstm/cell/vars holds \['0', '1', '7'\], not variables 0..2"):
        _load_bytes(_edit_weights(_fx("recurrent.keras"), gap), ".keras")


def test_an_input_that_feeds_nothing_is_a_file_error():
    def drop_mask(c):
        del _layer_cfg(c, "masked_attn")["inbound_nodes"][0]["kwargs"]["attention_mask"]

    with pytest.raises(ModelFileError, match=r"layer\(s\) \['visible'\] do not lead to the output") as info:
        _load_bytes(_edit_keras(_fx("attention.keras"), drop_mask), ".keras")
    assert info.value.__cause__ is None  # refused by the check, not by the catch-all


def test_random_changes_to_wrapper_and_attention_configs_load_or_are_refused():
    """Random edits of the layer entries the translation treats specially (MultiHeadAttention
    calls, Bidirectional/TimeDistributed inner layers, integer inputs): each file loads and
    predicts, or is refused by a deliberate check (never by the catch-all)."""
    import random

    import test_saving_fuzz as fuzz
    from test_keras_interop import _load_or_reject

    targets = [
        ("attention", "self_attn"),
        ("attention", "cross_attn"),
        ("attention", "masked_attn"),
        ("bidirectional", "bi_lstm_concat"),
        ("reshaping", "per_step"),
        ("time_distributed", "td_lstm"),
        ("merging", "ids"),
    ]
    rng = random.Random(8)
    outcomes = []
    for i in range(16):  # each load starts an HDF5 reader process; longer runs are done offline
        name, lname = targets[i % len(targets)]
        chooser = fuzz.RandomChooser(rng)

        def edit(c):
            entry = _layer_cfg(c, lname)
            fuzz.mutate_leaf(chooser, rng.choice([entry, entry["config"], entry.get("inbound_nodes") or entry]))

        outcomes.append(_load_or_reject(_edit_keras(_fx(f"{name}.keras"), edit), ".keras"))
    assert "rejected" in outcomes and "loaded" in outcomes


def test_attention_called_with_return_attention_scores_loads():
    """Keras records return_attention_scores=True as a call argument; the layer then has two
    outputs, and the model that uses the first predicts as before."""
    edited = _load_bytes(
        _edit_keras(_fx("attention.keras"), _call_kwarg("self_attn", "return_attention_scores", True)), ".keras"
    )
    plain = load_model(_fx("attention.keras"))
    assert edited.get_layer("self_attn").return_attention_scores
    xs = _inputs("attention")
    np.testing.assert_array_equal(edited.predict(xs, verbose=0), plain.predict(xs, verbose=0))
