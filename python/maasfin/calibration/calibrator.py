"""`calibrate` and `adjust_prior`: a new model whose output probability is corrected inside its graph."""

from __future__ import annotations

import copy
import math

import numpy as np

from maasfin.explain.monitoring import reference_bins
from maasfin.layers.calibration import METHODS, Calibration
from maasfin.layers.core import Dense
from maasfin.metrics.calibration import check_binary_inputs
from maasfin.saving.config import check_saveable, config_document, layer_entry
from maasfin.saving.maas import model_from_document
from maasfin.saving.tensors import weight_tensors

__all__ = ["calibrate", "adjust_prior", "prior_shift"]


def _output_layer(model):
    return model.outputs[0].layer if model._functional else model.layers[-1]


def _check_probability_output(model, fn: str) -> None:
    check_saveable(model)
    model._require_built("output")
    shape = tuple(model.output_shape)
    if shape != (None, 1):
        raise ValueError(
            f"{fn}: model '{model.name}' outputs shape {shape}; calibration needs one probability column, "
            "shape (None, 1) (a model ending in Dense(1, activation='sigmoid'))"
        )


def _probabilities(model, x, fn: str) -> np.ndarray:
    p = np.asarray(model.predict(x, verbose=0), dtype=np.float64).reshape(-1)
    bad = ~np.isfinite(p) | (p < 0) | (p > 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{fn}: model '{model.name}' predicts {float(p[i])} for row {i} of x (shape {np.shape(x)}); calibration "
            "needs probabilities in [0, 1]: end the model with a sigmoid"
        )
    return p


def _free_name(model, base: str) -> str:
    taken = {layer.name for layer in model.layers} | {t.layer.name for t in model.inputs}
    name, k = base, 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    return name


def _rebuild(model, doc: dict, weights: dict, fn: str):
    return model_from_document(doc, weights, f"{fn} (model '{model.name}')", compile=True)


def _score_reference(doc: dict, scores=None, edge_map=None) -> None:
    """The score's drift reference after the output changed: recomputed from `scores`, or its edges
    mapped through a strictly increasing `edge_map` (the shares of each bin stay the same)."""
    ref = (doc.get("explanations") or {}).get("drift_reference")
    if not ref or ref.get("score") is None:
        return
    if scores is not None:
        ref["score"] = reference_bins(scores)
        return
    edges = [float(edge_map(e)) for e in ref["score"]["edges"]]
    strictly = all(b > a for a, b in zip(edges, edges[1:])) and all(math.isfinite(e) for e in edges)
    ref["score"] = {"edges": edges, "proportions": ref["score"]["proportions"]} if strictly else None


def _append(model, layer: Calibration, fn: str, scores=None, edge_map=None):
    """A new model: `model` with the fitted `layer` after its output, its compile config, input
    schema and explanation state carried over."""
    doc = copy.deepcopy(config_document(model))
    weights = weight_tensors(model)
    cfg = doc["model"]["config"]
    entry = layer_entry(layer)
    if doc["model"]["class_name"] == "Sequential":
        cfg["layers"].append(entry)
    else:
        cfg["layers"].append({**entry, "name": layer.name, "inbound_layers": list(cfg["output_layers"])})
        cfg["output_layers"] = [layer.name]
    for pname, values in layer.parameters.items():
        weights[f"{layer.name}/{pname}"] = np.asarray(values, dtype=np.float32)
    _score_reference(doc, scores, edge_map)
    return _rebuild(model, doc, weights, fn)


def calibrate(model, x, y, method="isotonic", sample_weight=None):
    """A new model whose output is `model`'s probability, calibrated on held-out data (x, y).

    The calibrator is a `maasfin.layers.Calibration` layer appended to the model's graph, fitted on
    model.predict(x) and the 0/1 outcomes y: "isotonic" (pool-adjacent-violators, applied as
    piecewise-linear interpolation; may merge close scores into ties), "platt" (sigmoid(a * logit(p)
    + b), maximum likelihood; monotone, so ranking metrics are unchanged) or "beta" (sigmoid(a *
    ln p - b * ln(1 - p) + c), Kull et al. 2017). The new model keeps the compile config (fresh
    optimizer state), input schema, feature names, reason codes and attribution baseline; the score's
    drift reference is recomputed on x. Use data the model was not trained on."""
    fn = "calibrate"
    if method not in METHODS:
        raise ValueError(f"{fn}: unknown method {method!r}; valid methods: {', '.join(repr(m) for m in METHODS)}")
    _check_probability_output(model, fn)
    p = _probabilities(model, x, fn)
    _, _, w = check_binary_inputs(y, p, fn, sample_weight, both_classes=True, names=("y", "model.predict(x)"))
    layer = Calibration(method, name=_free_name(model, "calibration"))
    layer.fit(p, y, sample_weight=w)
    calibrated = layer(p.astype(np.float32).reshape(-1, 1)).reshape(-1)
    return _append(model, layer, fn, scores=calibrated)


def prior_shift(sample_rate, population_rate) -> float:
    """The change of the log-odds that maps probabilities learned at event rate `sample_rate` to
    a population with event rate `population_rate`: ln(pop / (1 - pop)) - ln(sample / (1 - sample))."""
    for arg, v in (("sample_rate", sample_rate), ("population_rate", population_rate)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)) or not 0 < v < 1:
            raise ValueError(f"adjust_prior: {arg} must be a number strictly between 0 and 1, got {v!r}")
    pop, sample = float(population_rate), float(sample_rate)
    return math.log(pop / (1.0 - pop)) - math.log(sample / (1.0 - sample))


def adjust_prior(model, sample_rate, population_rate):
    """A new model for a population whose event rate differs from the training sample's (a
    model trained on over- or under-sampled defaults): every predicted log-odds shifts by
    ln(pop / (1 - pop)) - ln(sample / (1 - sample)), the exact Bayes correction of the prior.

    When the output layer is Dense(1, activation="sigmoid") with a bias, or a Platt or beta
    Calibration layer, the shift goes into its intercept (exact up to float32 rounding of the new
    intercept); otherwise a Platt Calibration layer with slope 1 and the shift as intercept is
    appended (exact up to the float32 rounding of the probability it reads)."""
    fn = "adjust_prior"
    delta = prior_shift(sample_rate, population_rate)
    _check_probability_output(model, fn)

    def edge_map(e):
        e = min(max(e, 1e-300), 1.0 - 1e-16)
        return 1.0 / (1.0 + math.exp(-(math.log(e) - math.log1p(-e) + delta)))

    last = _output_layer(model)
    target = None
    if isinstance(last, Dense) and last.units == 1 and last.activation == "sigmoid" and last.use_bias:
        target = f"{last.name}/bias"
    elif isinstance(last, Calibration) and last.method in ("platt", "beta"):
        target = f"{last.name}/{'intercept' if last.method == 'platt' else 'c'}"
    if target is None:
        layer = Calibration.with_parameters("platt", _free_name(model, "prior_adjustment"), slope=1.0, intercept=delta)
        return _append(model, layer, fn, edge_map=edge_map)
    doc = copy.deepcopy(config_document(model))
    weights = weight_tensors(model)
    weights[target] = (weights[target].astype(np.float64) + delta).astype(np.float32)
    _score_reference(doc, edge_map=edge_map)
    return _rebuild(model, doc, weights, fn)
