"""Reading Keras 3 model files: `.keras` (a zip of config.json + model.weights.h5) and legacy `.h5`.

`maasfin.models.load_model("model.keras")` dispatches here. Sequential and functional models made
of the layers maasfin has load with their weights: Dense, Activation, the merge layers,
normalization, noise and preprocessing layers, Conv1D/2D, poolings, reshaping layers, Embedding,
SimpleRNN/LSTM/GRU, Bidirectional and TimeDistributed (whose wrapped layer's config is translated
the same way) and MultiHeadAttention (whose query/value/key tensors and `use_causal_mask` come from
the call recorded in the file). Recurrent layers' `return_state` outputs ([name, k] in maasfin's
wiring) and `initial_state` arguments are wired; the masks Keras writes as `not_equal`/`any` ops
and `mask=` arguments are dropped after checking that each layer reads exactly the mask maasfin
derives from Masking / Embedding(mask_zero=True). Each weight is matched to maasfin's in Keras's own order: the
nested groups of model.weights.h5 (`cell/vars`, `forward_layer/...`, `layer/vars`,
`query_dense/vars` ...) or the `weight_names` of a legacy `.h5`. The compile config (optimizer,
loss, metrics) is translated when maasfin has the same classes. Keras's optimizer state is not
imported: `fit` on the loaded model starts a fresh optimizer. A Keras option maasfin lacks is
refused with an error naming the layer and the option, unless it is off or does nothing here.

The same rules as for `.maas` files apply: nothing from the file is executed or imported (class
names are looked up in maasfin's allowlists, `"module"` fields are ignored), every field is
validated, and the translated architecture goes through the same checks (py) before any
tensor is used. HDF5 is read with h5py (`pip install 'maasfin[keras]'`) in a separate, resource-
limited process (see `_CHILD`), because the HDF5 C library is not hardened against hostile files:
a file that crashes it crashes only that process and is reported as a ModelFileError. Only hard
links are followed (no soft, external or virtual data) and only float32 datasets are used, each of
exactly the shape the architecture needs.
"""

from __future__ import annotations

import os

from maasfin import losses as losses_module
from maasfin import metrics as metrics_module
from maasfin.saving import archive, file_format
from maasfin.saving.architecture import build_architecture, with_rng_preserved
from maasfin.saving.checks import guard
from maasfin.saving.file_format import LIMITS, ModelFileError, fail
from maasfin.saving.keras.config import keras_config
from maasfin.saving.keras.h5 import (
    H5,
    config_get,
    extract_h5,
    keras_paths,
    weights_from_keras_h5,
    weights_from_legacy_h5,
)
from maasfin.saving.keras.translate import KERAS_MEMBERS, keras_kwargs, translate
from maasfin.saving.objects import loss_classes, metric_classes, optimizer_classes, schedule_classes
from maasfin.saving.tensors import assign_loaded_weights, weight_specs

__all__ = ["load_keras_model", "load_keras_weights"]


def _keras_object(entry, registry: dict, src: str, what: str):
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
        raise fail(src, f"{what} {entry!r} is not a Keras object config")
    cls = registry.get(entry["class_name"])
    if cls is None:
        raise fail(src, f"{what} {entry['class_name']!r} has no maasfin equivalent")
    cfg = entry.get("config") or {}
    if not isinstance(cfg, dict):
        raise fail(src, f"{what} config must be an object")

    def convert(key, value):
        if key == "learning_rate" and isinstance(value, dict):
            return _keras_object(value, schedule_classes(), src, "learning-rate schedule")
        return value

    try:
        return cls(**keras_kwargs(cls, cfg, src, f"{what} {entry['class_name']}", convert))
    except ModelFileError:
        raise
    except Exception as e:
        raise fail(src, f"{what} {entry['class_name']} cannot be built in maasfin: {e}") from None


def _named(value, table: dict, registry: dict, src: str, what: str):
    if isinstance(value, str):
        if what == "metric" and value in ("accuracy", "acc"):
            return value
        if value not in table:
            raise fail(src, f"{what} {value!r} has no maasfin equivalent")
        return value
    return _keras_object(value, registry, src, what)


def _compile(model, cc, src: str) -> None:
    if not isinstance(cc, dict):
        raise fail(src, "Keras compile config must be an object")
    if cc.get("loss_weights") is not None:
        raise fail(src, "Keras compile config has loss_weights (multi-output), which maasfin does not support")
    optimizer = _keras_object(cc.get("optimizer", cc.get("optimizer_config")), optimizer_classes(), src, "optimizer")
    loss = _named(cc.get("loss"), losses_module.BY_NAME, loss_classes(), src, "loss")
    lists = []
    for key in ("metrics", "weighted_metrics"):
        items = cc.get(key) or []
        if not isinstance(items, list):
            raise fail(src, f"Keras compile config {key} must be a list (multi-output metrics are not supported)")
        lists.append([_named(m, metrics_module.BY_NAME, metric_classes(), src, "metric") for m in items])
    try:
        model.compile(optimizer=optimizer, loss=loss, metrics=lists[0], weighted_metrics=lists[1] or None)
    except (TypeError, ValueError) as e:
        raise fail(src, f"Keras compile config cannot be used: {e}") from None


# -- entry point -----------------------------------------------------------------------------------
def _build(model_cfg, weights_resolver, src: str):
    doc = translate(model_cfg, src)
    masks = doc.pop("masks", None)
    resolved = {}

    def capture(specs):
        resolved.update(weights_resolver(specs))
        return resolved

    model = with_rng_preserved(build_architecture(doc, src, capture))
    if masks is not None:
        _check_masks(model, masks, src)
    assign_loaded_weights(model, resolved, src)
    return model


def _check_masks(model, masks: dict, src: str) -> None:
    """Every layer must read exactly the mask Keras wired to it (maasfin derives masks from the
    Masking / Embedding layers; a model where the two disagree is refused, not run differently)."""
    for layer in model.layers:
        want, got = masks.get(layer.name), layer._mask_in
        got = (
            None
            if got is None
            else (
                got.source.layer.name if got.source.index == 0 else [got.source.layer.name, got.source.index],
                got.value,
            )
        )
        if want is not None:
            want = (want[0], want[1])
        if want != got:
            raise fail(src, f"Keras layer '{layer.name}' reads the mask {want!r} but maasfin would give it {got!r}")


def _load_keras_zip(data: bytes, src: str, compile: bool):
    members = archive.read_archive(data, src, KERAS_MEMBERS, ("config.json", "model.weights.h5"))
    if "metadata.json" in members:
        meta = file_format.loads(members["metadata.json"], src, "metadata.json")
        version = meta.get("keras_version") if isinstance(meta, dict) else None
        if not (isinstance(version, str) and version.startswith("3.")):
            raise fail(src, f"was written by Keras {version!r}; maasfin reads Keras 3 files")
    cfg = file_format.loads(members["config.json"], src, "config.json")
    if not isinstance(cfg, dict):
        raise fail(src, "config.json must be an object")
    translated = translate(cfg, src)  # validates the layer list before anything else is read
    h5 = H5(
        *extract_h5(members["model.weights.h5"], src, "model.weights.h5", ("layers",), len(data)),
        src,
        "model.weights.h5",
    )
    paths = keras_paths({"class_name": translated["class_name"], "config": cfg["config"]})
    model = _build(cfg, weights_from_keras_h5(h5, paths, src), src)
    if compile and cfg.get("compile_config"):  # Keras writes {} for a model that was never compiled
        _compile(model, cfg["compile_config"], src)
    return model


def _utf8(text, src: str, what: str) -> bytes:
    if not isinstance(text, str) or len(text) > LIMITS["config.json"]:
        raise fail(src, f"{what} must be a JSON string of at most {LIMITS['config.json']} characters")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise fail(src, f"{what} is not UTF-8 text") from None


def _load_legacy_h5(data: bytes, src: str, compile: bool):
    if data[:8] != b"\x89HDF\r\n\x1a\n":
        raise fail(src, "is not an HDF5 file")
    h5 = H5(*extract_h5(data, src, "HDF5 file", ("model_weights",)), src, "HDF5 file")
    root = h5.attrs("")
    raw = root.get("model_config")
    if raw is None:
        raise fail(src, "has no model_config: it holds weights only (use model.load_weights in Keras)")
    version = root.get("keras_version")
    if not (isinstance(version, str) and version.startswith("3.")):
        raise fail(src, f"was written by Keras {version!r}; maasfin reads files written by Keras 3")
    cfg = file_format.loads(_utf8(raw, src, "model_config"), src, "model_config")
    layer_entries = config_get(cfg, "config") and config_get(cfg["config"], "layers")
    entries = (
        {config_get(config_get(e, "config"), "name"): e for e in layer_entries}
        if isinstance(layer_entries, list)
        else {}
    )
    model = _build(cfg, weights_from_legacy_h5(h5, src, entries), src)
    training = root.get("training_config")
    if compile and training is not None:
        _compile(model, file_format.loads(_utf8(training, src, "training_config"), src, "training_config"), src)
    return model


def load_keras_model(filepath, compile: bool = True):
    """Loads a Keras 3 `.keras` or legacy `.h5` file as a maasfin model (see the module docstring)."""
    p = str(filepath)
    src = f"Keras file '{p}'"
    data = archive.read_file(p, src)
    if p.lower().endswith(".keras"):
        return guard(lambda: _load_keras_zip(data, src, compile), src)
    return guard(lambda: _load_legacy_h5(data, src, compile), src)


def load_keras_weights(model, filepath) -> None:
    """model.load_weights("x.weights.h5"): a Keras 3 weights file (written by Keras or maasfin)
    into `model`, matched as Keras matches them: by the groups of the model's layers."""
    p = os.fspath(filepath)
    src = f"weights file '{p}'"
    model._require_built("weights")
    try:
        cfg = keras_config(model)
    except ValueError as e:
        raise ValueError(
            f"load_weights: model '{model.name}' has no Keras layout to match '{p}' against ({e})"
        ) from None
    data = archive.read_file(p, src)

    def run():
        h5 = H5(*extract_h5(data, src, "weights file", ("layers",)), src, "weights file")
        paths = keras_paths({"class_name": cfg["class_name"], "config": cfg["config"]})
        resolved = weights_from_keras_h5(h5, paths, src)(weight_specs(model))
        assign_loaded_weights(model, resolved, src)

    guard(run, src)
