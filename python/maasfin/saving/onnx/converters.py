"""One ONNX converter per layer class: (graph, layer, input names, output name, input shapes) -> output name."""

from __future__ import annotations

import numpy as np

from maasfin import layers as L
from maasfin.layers.calibration import EPSILON as CALIBRATION_EPSILON
from maasfin.saving.onnx.graph import NORMALIZATION_EPSILON, activation


def _dense(g, layer, xs, out, shapes):
    w = layer.get_weights()
    y = g.tmp("MatMul", [xs[0], g.const(f"{layer.name}/kernel", w[0])], f"{layer.name}/matmul")
    if layer.use_bias:
        y = g.tmp("Add", [y, g.const(f"{layer.name}/bias", w[1])], f"{layer.name}/bias_add")
    return activation(g, layer.activation, y, out, f"Dense '{layer.name}'")


def _monotonic_dense(g, layer, xs, out, shapes):
    # The effective kernel s_i |W_ij| is exported (the stored kernel is unconstrained), then the
    # convex / concave / saturated shapes of the activation per unit, selected by Where.
    n = layer.name
    y = g.tmp("MatMul", [xs[0], g.const(f"{n}/effective_kernel", layer.effective_kernel())], f"{n}/matmul")
    if layer.use_bias:
        y = g.tmp("Add", [y, g.const(f"{n}/bias", layer.get_weights()[1])], f"{n}/bias_add")
    if layer.activation == "linear":
        return g.op("Identity", [y], out)
    convex, concave, _ = layer.split()
    j = np.arange(layer.units)
    is_convex = g.const(f"{n}/convex_units", (j < convex).reshape(1, -1), np.bool_)
    is_concave = g.const(f"{n}/concave_units", ((j >= convex) & (j < convex + concave)).reshape(1, -1), np.bool_)
    one = g.const(f"{n}/one", 1.0)
    below = g.tmp("Less", [y, g.const(f"{n}/zero", 0.0)], f"{n}/below_zero")
    neg = g.tmp("Neg", [y], f"{n}/neg")
    sat_u = g.tmp(
        "Where",
        [below, g.tmp("Add", [y, one], f"{n}/plus_one"), g.tmp("Sub", [one, y], f"{n}/one_minus")],
        f"{n}/saturated_arg",
    )
    u = g.tmp("Where", [is_convex, y, g.tmp("Where", [is_concave, neg, sat_u], f"{n}/arg_rest")], f"{n}/arg")
    r = activation(g, layer.activation, u, g.name(f"{n}/rho"), f"MonotonicDense '{n}'")
    rho1 = activation(g, layer.activation, one, g.name(f"{n}/rho_one"), f"MonotonicDense '{n}'")
    sat = g.tmp(
        "Where",
        [below, g.tmp("Sub", [r, rho1], f"{n}/rho_minus"), g.tmp("Sub", [rho1, r], f"{n}/minus_rho")],
        f"{n}/saturated",
    )
    rest = g.tmp("Where", [is_concave, g.tmp("Neg", [r], f"{n}/concave"), sat], f"{n}/rest")
    return g.op("Where", [is_convex, r, rest], out)


def _activation_layer(g, layer, xs, out, shapes):
    return activation(g, layer.activation, xs[0], out, f"Activation '{layer.name}'")


def _identity(g, layer, xs, out, shapes):
    return g.op("Identity", [xs[0]], out)


def _batch_norm(g, layer, xs, out, shapes):
    # The core's inference formula: ((x - moving_mean) * inv_std) * gamma + beta, with
    # inv_std = 1 / sqrt(moving_variance + epsilon) computed in double and rounded to float32.
    w = dict(zip([n for n, _, _ in layer._param_specs()], layer.get_weights()))
    inv_std = (1.0 / np.sqrt(w["moving_variance"].astype(np.float64) + layer.epsilon)).astype(np.float32)
    y = g.tmp("Sub", [xs[0], g.const(f"{layer.name}/moving_mean", w["moving_mean"])], f"{layer.name}/centered")
    y = g.tmp("Mul", [y, g.const(f"{layer.name}/inv_std", inv_std)], f"{layer.name}/normalized")
    last = out if not layer.center else g.name(f"{layer.name}/scaled")
    if layer.scale:
        y = g.op("Mul", [y, g.const(f"{layer.name}/gamma", w["gamma"])], last)
    elif not layer.center:
        y = g.op("Identity", [y], last)
    if layer.center:
        y = g.op("Add", [y, g.const(f"{layer.name}/beta", w["beta"])], out)
    return y


def _layer_norm(g, layer, xs, out, shapes):
    # As the core: the mean and variance of each row in double precision (two passes, so that
    # features far from zero keep their spread), inv_std rounded to float32, then
    # float32(x - mean) * inv_std * gamma + beta.
    w = dict(zip([n for n, _, _ in layer._param_specs()], layer.get_weights()))
    n, T = layer.name, g.onnx.TensorProto
    x64 = g.tmp("Cast", [xs[0]], f"{n}/x_double", to=T.DOUBLE)
    mean = g.reduce("ReduceMean", x64, [-1], g.name(f"{n}/mean"), keepdims=1)
    d64 = g.tmp("Sub", [x64, mean], f"{n}/centered_double")
    var = g.reduce("ReduceMean", g.tmp("Mul", [d64, d64], f"{n}/squared"), [-1], g.name(f"{n}/variance"), keepdims=1)
    std = g.tmp(
        "Sqrt", [g.tmp("Add", [var, g.const(f"{n}/epsilon", layer.epsilon, np.float64)], f"{n}/var_eps")], f"{n}/std"
    )
    inv = g.tmp("Cast", [g.tmp("Reciprocal", [std], f"{n}/inv_std_double")], f"{n}/inv_std", to=T.FLOAT)
    d = g.tmp("Cast", [d64], f"{n}/centered", to=T.FLOAT)
    last = out if not layer.center else g.name(f"{n}/scaled")
    if layer.scale:
        h = g.tmp("Mul", [d, inv], f"{n}/normalized")
        y = g.op("Mul", [h, g.const(f"{n}/gamma", w["gamma"])], last)
    else:
        y = g.op("Mul", [d, inv], last)
    if layer.center:
        y = g.op("Add", [y, g.const(f"{n}/beta", w["beta"])], out)
    return y


def _add(g, layer, xs, out, shapes):
    y = xs[0]
    for k, x in enumerate(xs[1:], start=1):  # left to right, as the core
        y = g.op("Add", [y, x], out if k == len(xs) - 1 else g.name(f"{layer.name}/sum{k}"))
    return y


def _concatenate(g, layer, xs, out, shapes):
    return g.op("Concat", xs, out, axis=-1)


def _flatten(g, layer, xs, out, shapes):
    return g.op("Flatten", [xs[0]], out, axis=1)


def _reshape_to(g, x, shape, out):
    # 0 copies the (dynamic) batch dimension; the per-sample dims are the resolved output shape.
    return g.op("Reshape", [x, g.const(f"{out}/shape", [0, *shape], np.int64)], out)


def _reshape(g, layer, xs, out, shapes):
    return _reshape_to(g, xs[0], layer.output_shape[1:], out)


def _permute(g, layer, xs, out, shapes):
    return g.op("Transpose", [xs[0]], out, perm=[0, *layer.dims])


def _repeat_vector(g, layer, xs, out, shapes):
    u = g.tmp("Unsqueeze", [xs[0], g.axes(f"{layer.name}/axis1", [1])], f"{layer.name}/unsqueeze")
    return g.op("Expand", [u, g.const(f"{out}/shape", [1, layer.n, shapes[0][-1]], np.int64)], out)


def _zero_padding(g, layer, xs, out, shapes):
    rank = len(shapes[0]) + 1
    pads = [0] * (2 * rank)  # begins of every axis, then ends
    spans = [layer.padding] if np.ndim(layer.padding[0]) == 0 else list(layer.padding)
    for i, (before, after) in enumerate(spans, start=1):
        pads[i], pads[rank + i] = before, after
    return g.op("Pad", [xs[0], g.const(f"{layer.name}/pads", pads, np.int64)], out, mode="constant")


def _global_pooling(g, layer, xs, out, shapes):
    op = "ReduceMax" if layer._kind == "max" else "ReduceMean"
    return g.reduce(op, xs[0], list(range(1, layer._rank + 1)), out, keepdims=int(layer.keepdims))


def _normalization(g, layer, xs, out, shapes):
    w = dict(zip([n for n, _, _ in layer._param_specs()], layer.get_weights()))
    scale = np.maximum(np.sqrt(w["variance"]), np.float32(NORMALIZATION_EPSILON)).astype(np.float32)
    mean, s = g.const(f"{layer.name}/mean", w["mean"]), g.const(f"{layer.name}/scale", scale)
    if layer.invert:  # mean + x * scale
        return g.op("Add", [mean, g.tmp("Mul", [xs[0], s], f"{layer.name}/scaled")], out)
    return g.op("Div", [g.tmp("Sub", [xs[0], mean], f"{layer.name}/centered"), s], out)


def _imputation(g, layer, xs, out, shapes):
    fill = g.const(f"{layer.name}/fill_value", layer.get_weights()[0])
    missing = g.tmp("IsNaN", [xs[0]], f"{layer.name}/missing")
    if not layer.add_indicator:
        return g.op("Where", [missing, fill, xs[0]], out)
    filled = g.tmp("Where", [missing, fill, xs[0]], f"{layer.name}/filled")
    indicator = g.tmp("Cast", [missing], f"{layer.name}/indicator", to=g.onnx.TensorProto.FLOAT)
    return g.op("Concat", [filled, indicator], out, axis=-1)


def _encode(g, idx: str, depth: int, mode: str, k: int, out: str, hint: str) -> str:
    """The core's IndexEncoder on float indices (batch, k): int, one_hot, multi_hot or count.
    An index outside [0, depth) (the lookups' dropped index -1) sets no position."""
    if mode == "int":
        return g.op("Identity", [idx], out)
    u = g.tmp("Unsqueeze", [idx, g.axes(f"{hint}/last", [-1])], f"{hint}/unsqueeze")
    hot = g.tmp("Equal", [u, g.const(f"{hint}/categories", np.arange(depth))], f"{hint}/equal")
    hot = g.tmp("Cast", [hot], f"{hint}/one_hot", to=g.onnx.TensorProto.FLOAT)  # (batch, k, depth)
    if mode == "one_hot":
        if k == 1:
            return _reshape_to(g, hot, [depth], out)
        return g.op("Identity", [hot], out)
    return g.reduce("ReduceMax" if mode == "multi_hot" else "ReduceSum", hot, [1], out, keepdims=0)


def _category_encoding(g, layer, xs, out, shapes):
    return _encode(g, xs[0], layer.num_tokens, layer.output_mode, shapes[0][0], out, layer.name)


def _discretization(g, layer, xs, out, shapes):
    # Bucket = the number of boundaries <= x (std::upper_bound in the core, numpy.digitize).
    b = layer.get_weights()[0]
    n = layer.name
    u = g.tmp("Unsqueeze", [xs[0], g.axes(f"{n}/last", [-1])], f"{n}/unsqueeze")
    ge = g.tmp("GreaterOrEqual", [u, g.const(f"{n}/bin_boundaries", b)], f"{n}/at_or_above")
    counts = g.tmp("Cast", [ge], f"{n}/at_or_above_f", to=g.onnx.TensorProto.FLOAT)
    mode = layer.output_mode
    idx = g.reduce("ReduceSum", counts, [-1], out if mode == "int" else g.name(f"{n}/bucket"), keepdims=0)
    if mode == "int":
        return idx
    return _encode(g, idx, len(b) + 1, mode, shapes[0][0], out, n)


def _integer_lookup(g, layer, xs, out, shapes):
    """The core's IntegerLookup: integral tokens found in the vocabulary map to their index, the
    mask token to the mask index, NaN to the mask (or OOV) index, other values to an OOV bucket
    (token mod num_oov_indices)."""
    n, x, mode = layer.name, xs[0], layer.output_mode
    f32 = g.onnx.TensorProto.FLOAT
    slot = mode == "int" and layer.mask_token is not None
    mask_index = 0 if slot else -1
    oov_start = 1 if slot else 0
    token_start = oov_start + layer.num_oov_indices
    if layer.num_oov_indices == 0:
        raise ValueError(
            f"IntegerLookup '{n}' with num_oov_indices=0 cannot be exported to ONNX: the model "
            "raises on unknown tokens and an ONNX graph cannot"
        )
    vocab = np.asarray(layer.vocabulary, dtype=np.int64)
    index = token_start + np.arange(vocab.size)
    # Tokens that float32 cannot hold exactly never equal an input value (the core compares int64(x)).
    exact = np.array([int(np.float32(t)) == t for t in layer.vocabulary], dtype=bool)
    vocab, index = vocab[exact], index[exact]
    floor = g.tmp("Floor", [x], f"{n}/floor")
    integral = g.tmp(
        "And",
        [
            g.tmp("Equal", [x, floor], f"{n}/is_whole"),
            g.tmp("Less", [g.tmp("Abs", [x], f"{n}/abs"), g.const(f"{n}/int_limit", 9.2e18)], f"{n}/in_range"),
        ],
        f"{n}/integral",
    )
    zero = g.const(f"{n}/zero", 0.0)
    # OOV bucket of the integral tokens (else bucket 0), or the one OOV index
    if layer.num_oov_indices == 1:
        oov = g.const(f"{n}/oov_start", float(oov_start))
    else:
        t = g.tmp(
            "Cast", [g.tmp("Where", [integral, x, zero], f"{n}/token_or_0")], f"{n}/token", to=g.onnx.TensorProto.INT64
        )
        bucket = g.tmp("Mod", [t, g.const(f"{n}/num_oov", layer.num_oov_indices, np.int64)], f"{n}/bucket", fmod=0)
        oov = g.tmp(
            "Add",
            [g.tmp("Cast", [bucket], f"{n}/bucket_f", to=f32), g.const(f"{n}/oov_start", float(oov_start))],
            f"{n}/oov",
        )
    idx = oov
    if vocab.size:
        u = g.tmp("Unsqueeze", [x, g.axes(f"{n}/last", [-1])], f"{n}/unsqueeze")
        eq = g.tmp(
            "Cast",
            [g.tmp("Equal", [u, g.const(f"{n}/vocabulary", vocab, np.float32)], f"{n}/matches")],
            f"{n}/matches_f",
            to=f32,
        )  # (batch, k, V)
        found_index = g.reduce(
            "ReduceSum",
            g.tmp("Mul", [eq, g.const(f"{n}/indices", index, np.float32)], f"{n}/weighted"),
            [-1],
            g.name(f"{n}/found_index"),
            keepdims=0,
        )
        found = g.tmp(
            "Greater", [g.reduce("ReduceSum", eq, [-1], g.name(f"{n}/found_count"), keepdims=0), zero], f"{n}/found"
        )
        idx = g.tmp("Where", [found, found_index, idx], f"{n}/lookup")
    missing = g.tmp("IsNaN", [x], f"{n}/missing")
    if layer.mask_token is not None:
        is_mask = g.tmp("Equal", [x, g.const(f"{n}/mask_token", float(layer.mask_token))], f"{n}/is_mask")
        masked = g.tmp("Or", [is_mask, missing], f"{n}/masked")
        idx = g.tmp("Where", [masked, g.const(f"{n}/mask_index", float(mask_index)), idx], f"{n}/with_mask")
    else:
        idx = g.tmp("Where", [missing, g.const(f"{n}/oov_start_nan", float(oov_start)), idx], f"{n}/with_nan")
    return _encode(g, idx, layer.vocabulary_size(), mode, shapes[0][0], out, n)


def _embedding(g, layer, xs, out, shapes):
    i = g.tmp("Cast", [xs[0]], f"{layer.name}/indices", to=g.onnx.TensorProto.INT64)
    return g.op("Gather", [g.const(f"{layer.name}/embeddings", layer.get_weights()[0]), i], out, axis=0)


def _same_pads(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding (the extra cell after), as the core's window.hpp."""
    eff = (k - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def _to_channels_first(g, x, rank, hint):
    return g.tmp("Transpose", [x], f"{hint}/nchw", perm=[0, rank + 1, *range(1, rank + 1)])


def _to_channels_last(g, x, rank, out):
    return g.op("Transpose", [x], out, perm=[0, *range(2, rank + 2), 1])


def _window_pads(layer, spatial, k, strides, dilations):
    rank = len(spatial)
    if layer.padding == "valid":
        return [0] * (2 * rank)
    if layer.padding == "causal":  # Conv1D: everything before
        return [(k[0] - 1) * dilations[0], 0]
    p = [_same_pads(spatial[i], k[i], strides[i], dilations[i]) for i in range(rank)]
    return [a for a, _ in p] + [b for _, b in p]


def _conv(g, layer, xs, out, shapes):
    rank, n = layer._rank, layer.name
    w = layer.get_weights()
    kernel = np.transpose(w[0], (rank + 1, rank, *range(rank)))  # (k..., in, out) -> (out, in, k...)
    spatial = shapes[0][:rank]
    pads = _window_pads(layer, spatial, layer.kernel_size, layer.strides, layer.dilation_rate)
    inputs = [_to_channels_first(g, xs[0], rank, n), g.const(f"{n}/kernel", kernel)]
    if layer.use_bias:
        inputs.append(g.const(f"{n}/bias", w[1]))
    y = g.tmp(
        "Conv",
        inputs,
        f"{n}/conv",
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.strides),
        dilations=list(layer.dilation_rate),
        pads=pads,
    )
    y = _to_channels_last(g, y, rank, g.name(f"{n}/nhwc"))
    return activation(g, layer.activation, y, out, f"{type(layer).__name__} '{n}'")


def _pooling(g, layer, xs, out, shapes):
    rank, n = layer._rank, layer.name
    pads = _window_pads(layer, shapes[0][:rank], layer.pool_size, layer.strides, (1,) * rank)
    attrs = dict(kernel_shape=list(layer.pool_size), strides=list(layer.strides), pads=pads)
    if layer._kind == "avg":
        attrs["count_include_pad"] = 0  # padded cells are left out of the mean, as Keras
    y = g.tmp(
        "MaxPool" if layer._kind == "max" else "AveragePool",
        [_to_channels_first(g, xs[0], rank, n)],
        f"{n}/pool",
        **attrs,
    )
    return _to_channels_last(g, y, rank, out)


def _calibration(g, layer, xs, out, shapes):
    # As the core (cpp/src/layers/calibration.cpp): in double, rounded to float32 once.
    n, T = layer.name, g.onnx.TensorProto
    w = dict(zip([p for p, _, _ in layer._param_specs()], layer.get_weights()))
    if layer.method == "isotonic":
        knots_x, knots_y = w["x_thresholds"], w["y_thresholds"]
        xd, yd = knots_x.astype(np.float64), knots_y.astype(np.float64)
        slope = np.zeros(xd.size)
        slope[:-1] = (yd[1:] - yd[:-1]) / (xd[1:] - xd[:-1])  # the last segment is flat
        lo, hi = g.const(f"{n}/x_min", knots_x[0]), g.const(f"{n}/x_max", knots_x[-1])
        x = g.tmp("Clip", [xs[0], lo, hi], f"{n}/clipped")
        # segment = (the number of knots at or below x) - 1
        u = g.tmp("Unsqueeze", [x, g.axes(f"{n}/last", [-1])], f"{n}/unsqueeze")
        ge = g.tmp("GreaterOrEqual", [u, g.const(f"{n}/x_thresholds", knots_x)], f"{n}/at_or_above")
        count = g.reduce(
            "ReduceSum", g.tmp("Cast", [ge], f"{n}/at_or_above_i", to=T.INT64), [-1], g.name(f"{n}/count"), 0
        )
        seg = g.tmp("Sub", [count, g.const(f"{n}/one", 1, np.int64)], f"{n}/segment")
        x_lo = g.tmp("Gather", [g.const(f"{n}/x_lo", xd, np.float64), seg], f"{n}/x_lo_at", axis=0)
        y_lo = g.tmp("Gather", [g.const(f"{n}/y_lo", yd, np.float64), seg], f"{n}/y_lo_at", axis=0)
        sl = g.tmp("Gather", [g.const(f"{n}/slope", slope, np.float64), seg], f"{n}/slope_at", axis=0)
        dx = g.tmp("Sub", [g.tmp("Cast", [x], f"{n}/x_double", to=T.DOUBLE), x_lo], f"{n}/dx")
        y = g.tmp("Add", [y_lo, g.tmp("Mul", [sl, dx], f"{n}/rise")], f"{n}/y_double")
        return g.op("Cast", [y], out, to=T.FLOAT)
    x = g.tmp("Cast", [xs[0]], f"{n}/p_double", to=T.DOUBLE)
    eps = CALIBRATION_EPSILON
    q = g.tmp("Clip", [x, g.const(f"{n}/lo", eps, np.float64), g.const(f"{n}/hi", 1.0 - eps, np.float64)], f"{n}/q")
    lp = g.tmp("Log", [q], f"{n}/log_p")
    lq = g.tmp("Log", [g.tmp("Sub", [g.const(f"{n}/one", 1.0, np.float64), q], f"{n}/one_minus_q")], f"{n}/log_1mp")

    def c(name):
        return g.const(f"{n}/{name}", float(w[name][0]), np.float64)

    if layer.method == "platt":
        logit = g.tmp("Sub", [lp, lq], f"{n}/logit")
        z = g.tmp("Add", [g.tmp("Mul", [c("slope"), logit], f"{n}/scaled"), c("intercept")], f"{n}/z")
    else:
        ab = g.tmp(
            "Sub", [g.tmp("Mul", [c("a"), lp], f"{n}/a_log_p"), g.tmp("Mul", [c("b"), lq], f"{n}/b_log_1mp")], f"{n}/ab"
        )
        z = g.tmp("Add", [ab, c("c")], f"{n}/z")
    return g.op("Cast", [g.tmp("Sigmoid", [z], f"{n}/sigmoid")], out, to=T.FLOAT)


def _woe_encoding(g, layer, xs, out, shapes):
    """The core's numeric WoEEncoding: the WoE of bin = number of boundaries <= x, then the Special
    value's and the Missing (NaN) value's. String features never reach here (string inputs are refused)."""
    n, x, f32 = layer.name, xs[0], g.onnx.TensorProto.FLOAT
    weights = layer.get_weights()  # [bin_boundaries] [special_values] woe
    woe = weights[-1]
    bounds = weights[0] if layer.binning["splits"] else np.zeros(0, np.float32)
    specials = weights[-2] if layer.special_values else np.zeros(0, np.float32)
    u = g.tmp("Unsqueeze", [x, g.axes(f"{n}/last", [-1])], f"{n}/unsqueeze")  # (batch, 1, 1)
    if bounds.size:
        ge = g.tmp("GreaterOrEqual", [u, g.const(f"{n}/bin_boundaries", bounds)], f"{n}/at_or_above")
        counts = g.tmp("Cast", [ge], f"{n}/at_or_above_i", to=g.onnx.TensorProto.INT64)
        idx = g.reduce("ReduceSum", counts, [-1], g.name(f"{n}/bin"), keepdims=0)  # (batch, 1)
        value = g.tmp("Gather", [g.const(f"{n}/woe_bins", woe[: bounds.size + 1]), idx], f"{n}/woe_bin")
    else:
        value = g.tmp(
            "Add",
            [g.tmp("Mul", [x, g.const(f"{n}/zero", 0.0)], f"{n}/zeros"), g.const(f"{n}/woe_bin0", float(woe[0]))],
            f"{n}/woe_bin",
        )
    if specials.size:
        eq = g.tmp(
            "Cast", [g.tmp("Equal", [u, g.const(f"{n}/special_values", specials)], f"{n}/eq")], f"{n}/eq_f", to=f32
        )
        hit = g.tmp(
            "Greater",
            [g.reduce("ReduceMax", eq, [-1], g.name(f"{n}/any"), keepdims=0), g.const(f"{n}/zero_s", 0.0)],
            f"{n}/is_special",
        )
        value = g.tmp("Where", [hit, g.const(f"{n}/woe_special", float(woe[-2])), value], f"{n}/with_special")
    missing = g.tmp("IsNaN", [x], f"{n}/missing")
    return g.op("Where", [missing, g.const(f"{n}/woe_missing", float(woe[-1])), value], out)


def converter_table() -> dict[type, object]:
    table = {
        L.Dense: _dense,
        L.Activation: _activation_layer,
        L.Dropout: _identity,
        L.SpatialDropout1D: _identity,
        L.SpatialDropout2D: _identity,
        L.SpatialDropout3D: _identity,
        L.GaussianNoise: _identity,
        L.GaussianDropout: _identity,
        L.AlphaDropout: _identity,
        L.BatchNormalization: _batch_norm,
        L.LayerNormalization: _layer_norm,
        L.Add: _add,
        L.Concatenate: _concatenate,
        L.Flatten: _flatten,
        L.Reshape: _reshape,
        L.Permute: _permute,
        L.RepeatVector: _repeat_vector,
        L.ZeroPadding1D: _zero_padding,
        L.ZeroPadding2D: _zero_padding,
        L.GlobalMaxPooling1D: _global_pooling,
        L.GlobalMaxPooling2D: _global_pooling,
        L.GlobalAveragePooling1D: _global_pooling,
        L.GlobalAveragePooling2D: _global_pooling,
        L.Conv1D: _conv,
        L.Conv2D: _conv,
        L.MaxPooling1D: _pooling,
        L.MaxPooling2D: _pooling,
        L.AveragePooling1D: _pooling,
        L.AveragePooling2D: _pooling,
        L.Normalization: _normalization,
        L.Imputation: _imputation,
        L.Discretization: _discretization,
        L.CategoryEncoding: _category_encoding,
        L.IntegerLookup: _integer_lookup,
        L.Embedding: _embedding,
        L.Calibration: _calibration,
        L.WoEEncoding: _woe_encoding,
        L.MonotonicDense: _monotonic_dense,
    }
    return table


def supported_layers() -> list[str]:
    """Names of the layer classes the ONNX export converts."""
    return sorted(cls.__name__ for cls in converter_table())
