"""Recurrent layers' return_state / initial_state and Keras masks (Masking, Embedding(mask_zero=True),
propagation, the layers that use a mask): float64 NumPy references of Keras 3's semantics
(keras/src/backend/*/rnn.py: a masked step keeps the states and outputs the carried h, or zeros
with zero_output_for_mask as Bidirectional sets), the padded == unpadded property, finite-difference
gradients, saving round trips and errors."""

import warnings

import numpy as np
import pytest
from test_gradients import check_model, randomize_params

import maasfin as mf
from maasfin import _core
from maasfin.layers import (
    GRU,
    LSTM,
    Add,
    Bidirectional,
    Concatenate,
    Dense,
    Embedding,
    Flatten,
    GlobalAveragePooling1D,
    GlobalMaxPooling1D,
    Input,
    Masking,
    MultiHeadAttention,
    SimpleRNN,
    TimeDistributed,
)

BACKENDS = [pytest.param(_core.Backend.reference, id="reference"), pytest.param(_core.Backend.onednn, id="onednn")]
CLS = {"LSTM": LSTM, "GRU": GRU, "SimpleRNN": SimpleRNN}
S = {"LSTM": 2, "GRU": 1, "SimpleRNN": 1}


def sig(v):
    return 1 / (1 + np.exp(-v))


# -- float64 reference of Keras 3's RNN loop ------------------------------------------------------
def cell(kind, weights):
    kernel, recurrent, bias = [np.asarray(w, np.float64) for w in weights]
    u = recurrent.shape[0]

    def lstm(xt, state):
        h, c = state
        z = xt @ kernel + h @ recurrent + bias
        i, f, g, o = sig(z[:, :u]), sig(z[:, u : 2 * u]), np.tanh(z[:, 2 * u : 3 * u]), sig(z[:, 3 * u :])
        c = f * c + i * g
        return [o * np.tanh(c), c]

    def gru(xt, state):
        (h,) = state
        p, q = xt @ kernel + bias[0], h @ recurrent + bias[1]
        z, r = sig(p[:, :u] + q[:, :u]), sig(p[:, u : 2 * u] + q[:, u : 2 * u])
        hh = np.tanh(p[:, 2 * u :] + r * q[:, 2 * u :])
        return [z * h + (1 - z) * hh]

    def rnn(xt, state):
        return [np.tanh(xt @ kernel + state[0] @ recurrent + bias)]

    return {"LSTM": lstm, "GRU": gru, "SimpleRNN": rnn}[kind], u


def rnn_np(
    kind, weights, x, mask=None, state0=None, go_backwards=False, return_sequences=False, zero_output_for_mask=False
):
    """(output, final states) as Keras 3 computes them (unroll=False)."""
    step, u = cell(kind, weights)
    N, T = x.shape[:2]
    states = (
        [np.zeros((N, u)) for _ in range(S[kind])] if state0 is None else [np.asarray(s, np.float64) for s in state0]
    )
    outs = []
    for s in range(T):
        t = T - 1 - s if go_backwards else s
        new = step(x[:, t].astype(np.float64), states)
        keep = np.ones((N, 1), bool) if mask is None else mask[:, t : t + 1].astype(bool)
        out = np.where(keep, new[0], 0.0 if zero_output_for_mask else states[0])
        states = [np.where(keep, n, o) for n, o in zip(new, states)]
        outs.append(out)
    return (np.stack(outs, 1) if return_sequences else outs[-1]), states


def random_mask(rng, N, T):
    m = rng.random((N, T)) > 0.35
    m[0, :] = True  # a full row
    m[1, T // 2 :] = False  # trailing padding
    m[2, :2] = False  # leading padding
    return m


def set_random_weights(layer, rng, scale=0.6):
    layer.set_weights([rng.uniform(-scale, scale, w.shape).astype(np.float32) for w in layer.get_weights()])


# -- return_state ------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("kind", sorted(CLS))
def test_return_state_matches_numpy(rng, backend, kind, return_sequences, go_backwards):
    _core.set_backend(backend)
    inp = Input(shape=(6, 3))
    layer = CLS[kind](5, return_state=True, return_sequences=return_sequences, go_backwards=go_backwards)
    outs = layer(inp)
    assert len(outs) == 1 + S[kind]
    assert outs[0].shape == ((None, 6, 5) if return_sequences else (None, 5))
    assert all(t.shape == (None, 5) for t in outs[1:])
    parts = [Flatten()(outs[0]) if return_sequences else outs[0]] + list(outs[1:])
    m = mf.Model(inp, Concatenate()(parts))
    m.build()
    set_random_weights(layer, rng)
    x = rng.standard_normal((4, 6, 3)).astype(np.float32)
    want_out, want_states = rnn_np(
        kind, layer.get_weights(), x, go_backwards=go_backwards, return_sequences=return_sequences
    )
    want = np.concatenate([want_out.reshape(4, -1)] + want_states, axis=1)
    np.testing.assert_allclose(m.predict(x, verbose=0), want, rtol=1e-5, atol=1e-5)
    # The weights and their count do not depend on return_state (Keras's formulas).
    G = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}[kind]
    bias = 2 * G * 5 if kind == "GRU" else G * 5
    assert layer.count_params() == G * 5 * (3 + 5) + bias


def encoder_decoder(kind, rng, units=4):
    enc_in, dec_in = Input(shape=(5, 3), name="enc_in"), Input(shape=(4, 2), name="dec_in")
    enc = CLS[kind](units, return_state=True, name="encoder")
    _, *states = enc(enc_in)
    dec = CLS[kind](units, return_sequences=True, name="decoder")
    seq = dec(dec_in, initial_state=states)
    head = Dense(1, name="head")
    m = mf.Model([enc_in, dec_in], head(seq))
    m.build()
    for layer in (enc, dec, head):
        set_random_weights(layer, rng)
    return m, enc, dec, head


@pytest.mark.parametrize("kind", sorted(CLS))
def test_initial_state_encoder_decoder_matches_numpy(rng, kind):
    m, enc, dec, head = encoder_decoder(kind, rng)
    xe = rng.standard_normal((3, 5, 3)).astype(np.float32)
    xd = rng.standard_normal((3, 4, 2)).astype(np.float32)
    _, states = rnn_np(kind, enc.get_weights(), xe)
    seq, _ = rnn_np(kind, dec.get_weights(), xd, state0=states, return_sequences=True)
    k, b = head.get_weights()
    np.testing.assert_allclose(m.predict([xe, xd], verbose=0), seq @ k + b, rtol=1e-5, atol=1e-5)
    # The initial state matters: zero states give a different answer.
    zero_seq, _ = rnn_np(kind, dec.get_weights(), xd, return_sequences=True)
    assert np.abs(zero_seq - seq).max() > 1e-2


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", sorted(CLS))
def test_state_gradients(rng, kind, backend):
    """Gradients through the returned states and into initial_state (the encoder's weights get
    gradient only through the decoder's initial state) and through the state outputs."""
    _core.set_backend(backend)
    m, *_ = encoder_decoder(kind, rng, units=3)
    m.compile(optimizer="sgd", loss="mse")
    xe = rng.standard_normal((3, 5, 3)).astype(np.float32)
    xd = rng.standard_normal((3, 4, 2)).astype(np.float32)
    check_model(m, [xe, xd], rng.standard_normal((3, 4, 1)).astype(np.float32), what=f"{kind} encoder-decoder")
    # A loss on the states themselves (and a Dense making the initial state from an input).
    inp, z = Input(shape=(4, 2)), Input(shape=(3,))
    init = [Dense(3, activation="tanh")(z) for _ in range(S[kind])]
    outs = CLS[kind](3, return_state=True, return_sequences=True, go_backwards=True)(inp, initial_state=init)
    m2 = mf.Model([inp, z], Dense(2)(Concatenate()([Flatten()(outs[0])] + list(outs[1:]))))
    m2.build()
    m2.compile(optimizer="sgd", loss="mse")
    randomize_params(m2, rng, scale=0.5)
    check_model(
        m2,
        [rng.standard_normal((3, 4, 2)).astype(np.float32), rng.standard_normal((3, 3)).astype(np.float32)],
        rng.standard_normal((3, 2)).astype(np.float32),
        what=f"{kind} states",
    )


@pytest.mark.parametrize("kind", sorted(CLS))
def test_state_models_save_and_load(rng, kind, tmp_path):
    m, *_ = encoder_decoder(kind, rng)
    xe = rng.standard_normal((3, 5, 3)).astype(np.float32)
    xd = rng.standard_normal((3, 4, 2)).astype(np.float32)
    cfg = m.get_config()
    dec = next(e for e in cfg["layers"] if e["name"] == "decoder")
    assert dec["inbound_layers"] == ["dec_in"] + [["encoder", k] for k in range(1, 1 + S[kind])]
    path = tmp_path / "m.maas"
    m.save(path)
    loaded = mf.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict([xe, xd], verbose=0), m.predict([xe, xd], verbose=0))
    assert loaded.get_config() == cfg
    # A state as the model output is saved as [name, index].
    inp = Input(shape=(5, 3))
    _, h, *_ = CLS[kind](4, return_state=True, name="r")(inp)
    m2 = mf.Model(inp, h)
    assert m2.get_config()["output_layers"] == [["r", 1]]
    m2.build()
    loaded2 = mf.models.from_bytes(m2.to_bytes())
    np.testing.assert_array_equal(loaded2.predict(xe, verbose=0), m2.predict(xe, verbose=0))


def test_state_errors_name_layer_and_shapes():
    inp = Input(shape=(5, 3))
    with pytest.raises(
        ValueError, match=r"LSTM 'l1': initial_state must hold 2 tensors \[h, c\] of shape \(batch, 4\), got 1"
    ):
        LSTM(4, name="l1")(inp, initial_state=[Input(shape=(4,))])
    with pytest.raises(
        ValueError,
        match=r"GRU 'g1': initial_state\[0\] must have shape \(batch, 4\) for units=4, "
        r"got \(None, 3\)",
    ):
        GRU(4, name="g1")(inp, initial_state=Input(shape=(3,)))
    with pytest.raises(ValueError, match=r"Sequential .*single output tensor; layer 'l2' has 3"):
        mf.Sequential([Input(shape=(5, 3)), LSTM(4, return_state=True, name="l2")])
    with pytest.raises(ValueError, match="explicit mask= is not supported"):
        SimpleRNN(2)(inp, mask=Input(shape=(5,)))
    with pytest.raises(
        ValueError,
        match=r"Bidirectional 'bi': initial_state must hold 4 tensors \(the forward "
        r"layer's 2, then the backward layer's\), got 2",
    ):
        Bidirectional(LSTM(4), name="bi")(inp, initial_state=[Input(shape=(4,)), Input(shape=(4,))])
    # The core checks the state shapes too (a file that bypasses the Python checks).
    core = _core.LSTM(4, "tanh", "sigmoid", True, False, False, "glorot_uniform", "orthogonal", "zeros", True)
    core.name = "raw"
    g = _core.Graph()
    ids = [g.add_input([5, 3], "x"), g.add_input([4], "h"), g.add_input([3], "c")]
    with pytest.raises(
        ValueError, match=r"LSTM 'raw': initial_state\[1\] must have shape \(batch, 4\) for units=4, got \(3,\)"
    ):
        g.add_layer(core, ids)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("merge_mode", ["concat", "sum"])
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("given", ["mask", "initial_state"])
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_bidirectional_return_and_initial_state(rng, kind, given, return_sequences, merge_mode, backend):
    """Keras: [output, forward states, backward states]; initial_state = forward's then backward's;
    masks in both directions (zeros at masked steps when returning sequences)."""
    _core.set_backend(backend)
    x, mask = masked_input(rng, N=3, T=5, D=2)
    inp = Input(shape=(5, 2))
    init = [Input(shape=(3,)) for _ in range(2 * S[kind])] if given == "initial_state" else []
    seq = Masking()(inp) if given == "mask" else inp
    bi = Bidirectional(CLS[kind](3, return_state=True, return_sequences=return_sequences), merge_mode=merge_mode)
    outs = bi(seq, initial_state=init or None)
    assert len(outs) == 1 + 2 * S[kind] and all(t.shape == (None, 3) for t in outs[1:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Flatten drops the sequence's mask
        head = [Flatten()(outs[0]) if return_sequences else outs[0]] + list(outs[1:])
    m = mf.Model([inp] + init, Concatenate()(head))
    m.build()
    randomize_params(m, rng, scale=0.5)
    s0 = [rng.standard_normal((3, 3)).astype(np.float32) for _ in init]
    w = bi.get_weights()
    zero = return_sequences
    mk = mask if given == "mask" else None
    f, fs = rnn_np(
        kind,
        w[:3],
        x,
        mask=mk,
        state0=s0[: S[kind]] or None,
        return_sequences=return_sequences,
        zero_output_for_mask=zero,
    )
    b, bs = rnn_np(
        kind,
        w[3:],
        x,
        mask=mk,
        state0=s0[S[kind] :] or None,
        go_backwards=True,
        return_sequences=return_sequences,
        zero_output_for_mask=zero,
    )
    if return_sequences:
        b = b[:, ::-1]
    y = np.concatenate([f, b], -1) if merge_mode == "concat" else f + b
    want = np.concatenate([y.reshape(3, -1)] + fs + bs, axis=1)
    feed = [x] + s0 if s0 else x
    np.testing.assert_allclose(m.predict(feed, verbose=0), want, rtol=1e-5, atol=1e-5)
    # Gradients through the states, the initial states or the mask.
    if merge_mode == "concat":
        z = Input(shape=(2,))
        init_g = [Dense(3)(z) for _ in init] or None
        outs = Bidirectional(CLS[kind](3, return_state=True, return_sequences=return_sequences))(
            Masking()(inp) if given == "mask" else inp, initial_state=init_g
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            head = [Flatten()(outs[0]) if return_sequences else outs[0]] + list(outs[1:])
        g = mf.Model([inp, z] if init_g else inp, Dense(2)(Concatenate()(head)))
        g.build()
        g.compile(optimizer="sgd", loss="mse")
        randomize_params(g, rng, scale=0.5)
        xs = [x, rng.standard_normal((3, 2)).astype(np.float32)] if init_g else [x]
        check_model(g, xs, rng.standard_normal((3, 2)).astype(np.float32), what=f"bidirectional {kind} {given}")
    # Saved wiring names the outputs; loading predicts the same.
    loaded = mf.models.from_bytes(m.to_bytes())
    np.testing.assert_array_equal(loaded.predict(feed, verbose=0), m.predict(feed, verbose=0))


# -- masks ---------------------------------------------------------------------------------------
def masked_input(rng, N=5, T=7, D=3, value=0.0):
    x = rng.standard_normal((N, T, D)).astype(np.float32)
    m = random_mask(rng, N, T)
    x[~m] = value
    return x, m


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("kind", sorted(CLS))
def test_masked_forward_matches_numpy(rng, backend, kind, return_sequences, go_backwards):
    _core.set_backend(backend)
    x, mask = masked_input(rng, value=-1.0)
    layer = CLS[kind](4, return_sequences=return_sequences, go_backwards=go_backwards, return_state=True)
    inp = Input(shape=(7, 3))
    outs = layer(Masking(mask_value=-1.0)(inp))
    assert (outs[0]._keras_mask is not None) == return_sequences and outs[1]._keras_mask is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Flatten drops the mask, with Keras's warning
        head = [Flatten()(outs[0]) if return_sequences else outs[0]] + list(outs[1:])
    m = mf.Model(inp, Concatenate()(head))
    m.build()
    set_random_weights(layer, rng)
    out, states = rnn_np(
        kind,
        layer.get_weights(),
        np.where(mask[..., None], x, 0),
        mask=mask,
        go_backwards=go_backwards,
        return_sequences=return_sequences,
    )
    want = np.concatenate([out.reshape(5, -1)] + states, axis=1)
    np.testing.assert_allclose(m.predict(x, verbose=0), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", sorted(CLS))
def test_initial_state_call_ignores_the_mask_as_keras(rng, kind):
    """Keras 3 fills `mask` only for a call with one tensor argument: a layer called with
    initial_state runs every step (checked against real Keras in test_keras_interop's fixtures'
    generator runs), keeps passing the mask on, and maasfin warns."""
    x, mask = masked_input(rng, N=3, T=5)
    inp, h0 = Input(shape=(5, 3)), [Input(shape=(4,)) for _ in range(S[kind])]
    layer = CLS[kind](4, return_sequences=True, name="r")
    with pytest.warns(
        UserWarning,
        match=rf"{kind} 'r' is called with initial_state, so, as in Keras 3, it does not "
        "use the mask",
    ):
        out = layer(Masking()(inp), initial_state=h0)
    assert layer._mask_in is None and out._keras_mask is not None
    m = mf.Model([inp] + h0, out)
    m.build()
    set_random_weights(layer, rng)
    s0 = [rng.standard_normal((3, 4)).astype(np.float32) for _ in range(S[kind])]
    want, _ = rnn_np(kind, layer.get_weights(), np.where(mask[..., None], x, 0), state0=s0, return_sequences=True)
    np.testing.assert_allclose(m.predict([x] + s0, verbose=0), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", sorted(CLS))
def test_core_masks_with_initial_states(rng, kind):
    """The core supports a mask and initial states together (masked leading steps output the carried
    initial state, Keras's scan semantics); the Python API never wires both (see above)."""
    x, mask = masked_input(rng, N=3, T=5)
    mask[:, :2] = False
    x[:, :2] = 0
    make = {
        "LSTM": lambda: _core.LSTM(
            4, "tanh", "sigmoid", True, True, False, "glorot_uniform", "orthogonal", "zeros", True, has_mask=True
        ),
        "GRU": lambda: _core.GRU(
            4, "tanh", "sigmoid", True, True, False, "glorot_uniform", "orthogonal", "zeros", has_mask=True
        ),
        "SimpleRNN": lambda: _core.SimpleRNN(
            4, "tanh", True, True, False, "glorot_uniform", "orthogonal", "zeros", has_mask=True
        ),
    }[kind]
    g = _core.Graph()
    ids = [g.add_input([5, 3], "x"), g.add_input([5], "mask")] + [g.add_input([4], f"s{k}") for k in range(S[kind])]
    core = make()
    core.name = "r"
    out = g.add_layer(core, ids)
    g.build(out, 1)
    weights = [rng.uniform(-0.6, 0.6, tuple(shape)).astype(np.float32) for _, shape, _ in g.layer_params(out)]
    for (_, shape, off), w in zip(g.layer_params(out), weights):
        g.params[off : off + w.size] = w.ravel()
    s0 = [rng.standard_normal((3, 4)).astype(np.float32) for _ in range(S[kind])]
    got = g.predict([x, mask.astype(np.float32)] + s0, 32)
    want, _ = rnn_np(kind, weights, x, mask=mask, state0=s0, return_sequences=True)
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got.reshape(want.shape)[:, 0], s0[0], rtol=1e-6)


@pytest.mark.parametrize("kind", sorted(CLS))
def test_trailing_padding_equals_the_shorter_sequence(rng, kind):
    """The Keras property masks exist for: a padded sequence gives the unpadded sequence's output."""
    lengths = [7, 3, 5, 1]
    x = np.zeros((4, 7, 2), np.float32)
    for i, n in enumerate(lengths):
        x[i, :n] = rng.standard_normal((n, 2))
    layer = CLS[kind](3)
    m = mf.Sequential([Input(shape=(7, 2)), Masking(), layer, Dense(2)])
    m.build()
    randomize_params(m, rng, scale=0.5)
    got = m.predict(x, verbose=0)
    for i, n in enumerate(lengths):
        short = mf.Sequential([Input(shape=(n, 2)), CLS[kind](3), Dense(2)])
        short.set_weights(m.get_weights())
        np.testing.assert_allclose(got[i], short.predict(x[i : i + 1, :n], verbose=0)[0], rtol=1e-5, atol=1e-6)
    # Without the mask the padding changes the answer.
    plain = mf.Sequential([Input(shape=(7, 2)), CLS[kind](3), Dense(2)])
    plain.set_weights(m.get_weights())
    assert np.abs(plain.predict(x, verbose=0)[1:] - got[1:]).max() > 1e-3


def test_embedding_mask_zero_matches_unpadded(rng):
    tokens = np.array([[3, 5, 2, 0, 0], [7, 1, 4, 6, 2], [9, 0, 0, 0, 0]], np.float32)
    emb, lstm = Embedding(10, 4, mask_zero=True), LSTM(3)
    m = mf.Sequential([Input(shape=(5,)), emb, lstm])
    m.build()
    randomize_params(m, rng, scale=0.5)
    got = m.predict(tokens, verbose=0)
    for i, n in enumerate([3, 5, 1]):
        short = mf.Sequential([Input(shape=(n,)), Embedding(10, 4), LSTM(3)])
        short.set_weights(m.get_weights())
        np.testing.assert_allclose(got[i], short.predict(tokens[i : i + 1, :n], verbose=0)[0], rtol=1e-5, atol=1e-6)
    cfg = emb.get_config()
    assert cfg["mask_zero"] is True and Embedding.from_config(cfg).get_config() == cfg


def test_bidirectional_mask(rng):
    """Both directions skip masked steps; with sequences Keras zeroes the masked steps' outputs."""
    x, mask = masked_input(rng, N=4, T=6, D=2)
    inp = Input(shape=(6, 2))
    bi = Bidirectional(GRU(3, return_sequences=True))
    m = mf.Model(inp, bi(Masking()(inp)))
    m.build()
    randomize_params(m, rng, scale=0.5)
    w = bi.get_weights()
    f, _ = rnn_np("GRU", w[:3], x, mask=mask, return_sequences=True, zero_output_for_mask=True)
    b, _ = rnn_np("GRU", w[3:], x, mask=mask, return_sequences=True, go_backwards=True, zero_output_for_mask=True)
    np.testing.assert_allclose(m.predict(x, verbose=0), np.concatenate([f, b[:, ::-1]], -1), rtol=1e-5, atol=1e-5)
    # Final states: padded equals unpadded in both directions.
    lengths = [6, 2, 4]
    xs = np.zeros((3, 6, 2), np.float32)
    for i, n in enumerate(lengths):
        xs[i, :n] = rng.standard_normal((n, 2))
    bl = Bidirectional(LSTM(3), merge_mode="sum")
    m2 = mf.Sequential([Input(shape=(6, 2)), Masking(), bl])
    m2.build()
    randomize_params(m2, rng, scale=0.5)
    got = m2.predict(xs, verbose=0)
    for i, n in enumerate(lengths):
        short = mf.Sequential([Input(shape=(n, 2)), Bidirectional(LSTM(3), merge_mode="sum")])
        short.set_weights(m2.get_weights())
        np.testing.assert_allclose(got[i], short.predict(xs[i : i + 1, :n], verbose=0)[0], rtol=1e-5, atol=1e-6)


def test_global_average_pooling_skips_masked_steps(rng):
    x, mask = masked_input(rng, N=4, T=6, D=3)
    mask[3] = False  # every step masked: Keras divides 0 by 0
    x[3] = 0
    m = mf.Sequential([Input(shape=(6, 3)), Masking(), Dense(2), GlobalAveragePooling1D()])
    m.build()
    randomize_params(m, rng)
    k, b = m.layers[1].get_weights()
    y = x @ k + b
    want = (y * mask[..., None])[:3].sum(1) / mask[:3].sum(1, keepdims=True)
    with np.errstate(invalid="ignore"):
        got = m.predict(x, verbose=0)
    np.testing.assert_allclose(got[:3], want, rtol=1e-5, atol=1e-6)
    assert np.isnan(got[3]).all()
    # Keras 3's GlobalMaxPooling1D takes no mask: the mask is dropped (with Keras's warning).
    with pytest.warns(UserWarning, match="does not support masking"):
        m2 = mf.Sequential([Input(shape=(6, 3)), Masking(), GlobalMaxPooling1D()])
        m2.build()
    np.testing.assert_allclose(m2.predict(x, verbose=0), np.where(mask[..., None], x, 0).max(1), rtol=1e-6)


MASK_GRAD_CASES = {
    "lstm": lambda: [LSTM(3, return_sequences=True), LSTM(2)],
    "gru_backwards": lambda: [GRU(3, return_sequences=True, go_backwards=True), GRU(2)],
    "simple_rnn": lambda: [SimpleRNN(3, return_sequences=True), SimpleRNN(2, go_backwards=True)],
    "bidirectional": lambda: [Bidirectional(LSTM(2, return_sequences=True)), Bidirectional(GRU(2), merge_mode="mul")],
    "pooling": lambda: [LSTM(3, return_sequences=True), GlobalAveragePooling1D()],
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(MASK_GRAD_CASES))
def test_masked_gradients(rng, case, backend):
    """Masking -> Dense (keeps the mask, and receives the recurrent layer's dx) -> masked layers."""
    _core.set_backend(backend)
    x, _ = masked_input(rng, N=4, T=5, D=2)
    m = mf.Sequential(
        [Input(shape=(5, 2)), Masking(), Dense(2, activation="tanh")] + MASK_GRAD_CASES[case]() + [Dense(2)]
    )
    m.compile(optimizer="sgd", loss="mse")
    m.build()
    randomize_params(m, rng, scale=0.5)
    check_model(m, [x], rng.standard_normal((4, 2)).astype(np.float32), what=case)


def test_masked_state_gradients(rng):
    """Masks with the returned states (h and c are the carried states of each row's last unmasked step)."""
    x, mask = masked_input(rng, N=4, T=5, D=2)
    inp = Input(shape=(5, 2))
    h = Dense(2, activation="tanh")(Masking()(inp))
    outs = LSTM(3, return_state=True, return_sequences=True, go_backwards=True)(h)
    with pytest.warns(UserWarning, match="does not support masking"):
        flat = Flatten()(outs[0])
    m = mf.Model(inp, Dense(1)(Concatenate()([flat, outs[1], outs[2]])))
    m.build()
    m.compile(optimizer="sgd", loss="mse")
    randomize_params(m, rng, scale=0.5)
    check_model(m, [x], rng.standard_normal((4, 1)).astype(np.float32), what="masked states")


def test_mask_propagation_follows_keras():
    inp = Input(shape=(5, 3))
    masked = Masking()(inp)
    assert masked._keras_mask is not None
    kept = Dense(4)(masked)  # Dense supports masking
    assert kept._keras_mask == masked._keras_mask
    seq = LSTM(2, return_sequences=True)(kept)  # an RNN returning sequences passes the mask on
    assert seq._keras_mask == masked._keras_mask
    assert LSTM(2)(seq)._keras_mask is None  # ... and consumes it otherwise
    assert Add()([kept, Dense(4)(masked)])._keras_mask == masked._keras_mask  # the same mask on every input
    with pytest.warns(UserWarning, match=r"Layer 'flat' \(of type Flatten\) was passed an input with a mask"):
        assert Flatten(name="flat")(seq)._keras_mask is None
    with pytest.warns(UserWarning, match="does not support masking"):
        TimeDistributed(Dense(2))(seq)  # Keras 3's TimeDistributed drops the mask too
    other = Masking(mask_value=1.0)(inp)
    with pytest.raises(ValueError, match=r"Concatenate 'cat': its inputs carry different masks"):
        Concatenate(name="cat")([masked, other])
    assert Concatenate()([kept, Dense(4)(inp)])._keras_mask is None  # Keras: an unmasked input unmasks
    assert Add()([kept, Dense(4)(inp)])._keras_mask is None
    with pytest.raises(ValueError, match="implicit masks are not supported here"):
        MultiHeadAttention(1, 2)(masked, masked)


def test_output_mask_is_refused_at_fit(rng):
    m = mf.Sequential([Input(shape=(4, 2)), Masking(), LSTM(3, return_sequences=True), Dense(1)])
    m.compile(optimizer="sgd", loss="mse")
    x = rng.standard_normal((4, 4, 2)).astype(np.float32)
    assert m.predict(x, verbose=0).shape == (4, 4, 1)
    with pytest.raises(ValueError, match="its output carries a mask"):
        m.fit(x, np.zeros((4, 4, 1), np.float32), verbose=0)


def test_masked_models_save_and_load(rng):
    x, _ = masked_input(rng, N=4, T=5, D=2)
    seq = mf.Sequential([Input(shape=(5, 2)), Masking(mask_value=0.0), Bidirectional(LSTM(3)), Dense(1)])
    seq.build()
    randomize_params(seq, rng)
    loaded = mf.models.from_bytes(seq.to_bytes())
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), seq.predict(x, verbose=0))
    inp = Input(shape=(5,))
    h = Embedding(8, 3, mask_zero=True)(inp)
    out = Dense(1)(GlobalAveragePooling1D()(GRU(2, return_sequences=True)(h)))
    fun = mf.Model(inp, out)
    fun.build()
    randomize_params(fun, rng)
    tokens = np.array([[1, 2, 0, 0, 0], [3, 4, 5, 6, 7]], np.float32)
    loaded = mf.models.from_bytes(fun.to_bytes())
    np.testing.assert_array_equal(loaded.predict(tokens, verbose=0), fun.predict(tokens, verbose=0))
    cfg = Masking(mask_value=-2.5, name="mk").get_config()
    assert cfg == {"name": "mk", "trainable": True, "mask_value": -2.5} and Masking.from_config(cfg).get_config() == cfg


def test_masking_errors_name_layer_and_shape():
    with pytest.raises(ValueError, match=r"Masking 'mk': mask_value must be a finite number"):
        Masking(mask_value=float("nan"), name="mk")
    with pytest.raises(
        ValueError,
        match=r"Masking 'mk2' expects one input of shape \(timesteps, features\) per "
        r"sample, got \(4,\)",
    ):
        Masking(name="mk2")(Input(shape=(4,)))


def test_masking_layer_values_and_gradient(rng):
    x, mask = masked_input(rng, N=3, T=4, D=2, value=2.0)
    x[0, 0, 0] = 2.0  # one feature equal to mask_value does not mask the step
    m = mf.Sequential([Input(shape=(4, 2)), Masking(mask_value=2.0)])
    np.testing.assert_array_equal(m.predict(x, verbose=0), np.where(mask[..., None], x, 0))
    with pytest.warns(UserWarning, match="does not support masking"):
        m2 = mf.Sequential([Input(shape=(4, 2)), Masking(mask_value=2.0), Flatten(), Dense(1)])
        m2.build()
    randomize_params(m2, rng)
    (dx,) = _core.input_gradients(m2._graph, [x], np.ones((3, 1), np.float32))
    k = m2.layers[2].get_weights()[0].reshape(4, 2)
    np.testing.assert_allclose(dx, np.where(mask[..., None], k[None], 0), rtol=1e-6)


@pytest.mark.parametrize("kind", sorted(CLS))
def test_initial_state_input_gradients(rng, kind):
    """d(output)/d(initial state) from the core against central differences of predict."""
    x, _ = masked_input(rng, N=3, T=4, D=2)
    inp, h0 = Input(shape=(4, 2)), [Input(shape=(3,)) for _ in range(S[kind])]
    m = mf.Model([inp] + h0, Dense(1)(CLS[kind](3, go_backwards=True)(inp, initial_state=h0)))
    m.build()
    randomize_params(m, rng, scale=0.7)
    s0 = [rng.standard_normal((3, 3)).astype(np.float64) for _ in range(S[kind])]
    grads = _core.input_gradients(m._graph, [x] + [s.astype(np.float32) for s in s0], np.ones((3, 1), np.float32))
    eps = 1e-3
    for k in range(S[kind]):
        num = np.zeros((3, 3))
        for j in range(3):
            up = [s.copy() for s in s0]
            dn = [s.copy() for s in s0]
            up[k][:, j] += eps
            dn[k][:, j] -= eps
            f = lambda st: m.predict([x] + [s.astype(np.float32) for s in st], verbose=0).astype(np.float64)[:, 0]
            num[:, j] = (f(up) - f(dn)) / (2 * eps)
        assert np.abs(num).max() > 1e-2
        np.testing.assert_allclose(grads[1 + k], num, rtol=2e-2, atol=5e-4)


def test_masked_lstm_learns_variable_length_sequences():
    """End to end: targets depend on the valid steps only (the last valid value minus the first);
    with trailing padding masked, an LSTM trained by fit reaches a loss far below var(y) ~ 2."""
    rng = np.random.default_rng(11)

    def task(n):
        lengths = rng.integers(2, 9, n)
        x = np.zeros((n, 8, 1), np.float32)
        for i, k in enumerate(lengths):
            x[i, :k, 0] = rng.uniform(0.1, 1.0, k) * rng.choice([-1, 1], k)
        y = np.array([x[i, k - 1, 0] - x[i, 0, 0] for i, k in enumerate(lengths)], np.float32)[:, None]
        return x, y

    (x, y), (xv, yv) = task(1024), task(256)
    m = mf.Sequential([Input(shape=(8, 1)), Masking(), LSTM(16), Dense(1)])
    m.compile(optimizer=mf.optimizers.Adam(0.01), loss="mse")
    m.fit(x, y, epochs=30, batch_size=64, verbose=0)
    assert m.evaluate(xv, yv, verbose=0) < 0.02 * float(np.var(yv))


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "SimpleRNN"])
def test_zero_output_for_mask_as_keras(rng, kind, tmp_path):
    """Keras's RNN argument: masked steps output zeros instead of repeating the carried output;
    unmasked steps are the same either way, and the flag survives saving."""
    x = rng.standard_normal((3, 6, 2)).astype(np.float32)
    x[0, 4:] = 0.0
    x[2, 1:] = 0.0
    outs, weights = {}, None
    for zero in (False, True):
        m = mf.Sequential(
            [Input(shape=(6, 2)), Masking(), CLS[kind](3, return_sequences=True, zero_output_for_mask=zero)]
        )
        m.build()
        if zero:
            m.set_weights(weights)
        else:
            randomize_params(m, rng, scale=0.5)
            weights = m.get_weights()
        outs[zero] = m.predict(x, verbose=0)
    masked = np.all(x == 0.0, axis=-1)
    np.testing.assert_array_equal(outs[True][masked], 0.0)
    np.testing.assert_array_equal(outs[True][~masked], outs[False][~masked])
    np.testing.assert_array_equal(outs[False][0, 4], outs[False][0, 3])  # the carried output
    m.save(tmp_path / "z.maas")
    np.testing.assert_array_equal(mf.models.load_model(tmp_path / "z.maas").predict(x, verbose=0), outs[True])
