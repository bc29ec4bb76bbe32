"""Small end-to-end sequence models: a Transformer encoder block (MultiHeadAttention, Add
residuals, LayerNormalization, Dense) that learns an order-dependent rule, and an LSTM forecaster
of US real GDP growth (statsmodels' macrodata) that beats the naive last-value forecast on the
last 40 quarters it never saw."""

import numpy as np
import statsmodels.api as sm

import maasfin as mf
from maasfin import layers as L

T, VOCAB = 10, 8


def before_task(rng, n):
    """Token sequences holding one 1 and one 2 among fillers 3..7; label: the 1 comes first.
    Features: one-hot token and one-hot position (attention alone cannot see order)."""
    tok = rng.integers(3, VOCAB, size=(n, T))
    for i in range(n):
        a, b = rng.choice(T, 2, replace=False)
        tok[i, a], tok[i, b] = 1, 2
    y = (np.argmax(tok == 1, 1) < np.argmax(tok == 2, 1)).astype(np.float32)
    pos = np.broadcast_to(np.eye(T, dtype=np.float32), (n, T, T))
    return np.concatenate([np.eye(VOCAB, dtype=np.float32)[tok], pos], -1), y


def encoder_block(x, dim=16, heads=2, ff=32):
    a = L.MultiHeadAttention(num_heads=heads, key_dim=dim // heads)(x, x)
    x = L.LayerNormalization()(L.Add()([x, a]))
    f = L.Dense(dim)(L.Dense(ff, activation="relu")(x))
    return L.LayerNormalization()(L.Add()([x, f]))


def test_transformer_encoder_learns_which_token_comes_first():
    mf.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x_train, y_train = before_task(rng, 2000)
    x_test, y_test = before_task(rng, 500)
    inp = L.Input(shape=(T, VOCAB + T))
    h = encoder_block(L.Dense(16)(inp))
    model = mf.Model(inp, L.Dense(1, activation="sigmoid")(L.GlobalAveragePooling1D()(h)))
    model.compile(mf.optimizers.Adam(0.005), "binary_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=15, batch_size=32, verbose=0)
    _, acc = model.evaluate(x_test, y_test, verbose=0)
    assert acc >= 0.97, acc
    # Order is what it learned: swapping the two marked tokens flips the prediction.
    swapped = x_test.copy()
    swapped[..., [1, 2]] = x_test[..., [2, 1]]
    p, q = model.predict(x_test, verbose=0)[:, 0], model.predict(swapped, verbose=0)[:, 0]
    assert np.mean((p > 0.5) != (q > 0.5)) >= 0.95


def macro_windows(window=4, holdout=40):
    """Inputs: `window` quarters of annualised real GDP and consumption growth and the change in
    unemployment; target: next quarter's GDP growth. The last `holdout` quarters are the test set."""
    d = sm.datasets.macrodata.load_pandas().data
    growth = lambda c: 400 * np.diff(np.log(d[c].to_numpy()))
    feats = np.stack([growth("realgdp"), growth("realcons"), np.diff(d["unemp"].to_numpy())], 1)
    target = growth("realgdp")
    x = np.stack([feats[i : i + window] for i in range(len(feats) - window)]).astype(np.float32)
    y = target[window:].astype(np.float32)
    last_value = target[window - 1 : -1].astype(np.float32)  # the naive forecast
    split = len(y) - holdout
    mu, sd = x[:split].reshape(-1, 3).mean(0), x[:split].reshape(-1, 3).std(0)
    x = (x - mu) / sd
    return x[:split], y[:split], x[split:], y[split:], last_value[split:]


def test_lstm_forecaster_beats_the_naive_forecast_on_held_out_quarters():
    x_train, y_train, x_test, y_test, naive = macro_windows()
    y_mean, y_std = y_train.mean(), y_train.std()
    rmse = lambda p: float(np.sqrt(np.mean((p - y_test) ** 2)))
    preds = []
    for seed in range(3):
        mf.utils.set_random_seed(seed)
        model = mf.Sequential([L.Input(shape=x_train.shape[1:]), L.LSTM(8), L.Dense(1)])
        model.compile(mf.optimizers.Adam(0.003), "mse")
        model.fit(
            x_train,
            (y_train - y_mean) / y_std,
            epochs=200,
            batch_size=16,
            verbose=0,
            validation_split=0.2,
            callbacks=[mf.callbacks.EarlyStopping(patience=15, restore_best_weights=True)],
        )
        preds.append(model.predict(x_test, verbose=0)[:, 0] * y_std + y_mean)
        assert rmse(preds[-1]) < rmse(naive), (seed, rmse(preds[-1]), rmse(naive))
    assert rmse(np.mean(preds, 0)) < 0.96 * rmse(naive)
