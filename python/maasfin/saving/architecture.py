"""Architectures read: models rebuilt from configs, checked against their weights and memory budgets first."""

from __future__ import annotations

import inspect
import math
import warnings
from typing import NamedTuple

from maasfin import _core, metrics, seeds
from maasfin.layers.base import InputLayer
from maasfin.saving.checks import guard
from maasfin.saving.config import parse_ref, schema_of
from maasfin.saving.file_format import (
    CONFIG,
    LIMITS,
    WEIGHTS,
    check_list,
    check_object,
    check_shape,
    check_str,
    fail,
    loads,
    normalized,
)
from maasfin.saving.objects import (
    check_round_trip,
    construct,
    loss_classes,
    make_layer,
    metric_classes,
    model_classes,
    optimizer_classes,
    resolve_entry,
    schedule_classes,
)

# -- loading: architecture -----------------------------------------------------------------------
ACTIVATION_ROWS = 32  # the inference tile the activation budget is measured on (Keras's batch size)


class Plan(NamedTuple):
    """What a checked architecture needs: its weights [(key, shape)], the most floats its parameter
    arena can take (each tensor starts aligned to 16 floats) and its layers' outputs per sample."""

    specs: list
    arena: int
    floats: int


def preflight(inputs: list[tuple[str, tuple]], nodes: list[tuple[object, list]], src: str):
    """Shapes and parameter specs of a model, from a throwaway core graph that allocates nothing:
    checks every layer's output size before the real model is built."""
    g = _core.Graph()
    ids = {}
    for name, shape in inputs:
        ids[(name, 0)] = g.add_input(list(shape), name)
    specs, floats = [], sum(math.prod(shape) for _, shape in inputs)
    for layer, inbound in nodes:
        where = f"layer '{layer.name}'"
        try:
            node = g.add_layer(layer._make_core_named(), [ids[ref_key(r)] for r in inbound])
            params = [(p, tuple(int(d) for d in s)) for p, s, _ in g.layer_params(node)]
            parts = layer._take_outputs(g, node)
            shapes = [tuple(int(d) for d in g.node_shape(n)) for n in parts]
            if list(parts) != [node]:  # a layer with several outputs computes them in one node first
                floats += math.prod(int(d) for d in g.node_shape(node))
        except (ValueError, TypeError, RuntimeError) as e:
            raise fail(src, f"{where} cannot be applied to its inputs: {e}") from None
        for shape in shapes:
            if not shape or any(d <= 0 for d in shape) or math.prod(shape) > LIMITS["elements_per_sample"]:
                raise fail(
                    src,
                    f"{where} would output shape {shape}, over the limit of "
                    f"{LIMITS['elements_per_sample']} elements per sample",
                )
            floats += math.prod(shape)
        for k, n in enumerate(parts):
            ids[(layer.name, k)] = n
        specs += [(f"{layer.name}/{p}", s) for p, s in params]
    return Plan(specs, sum(math.prod(s) + 15 for _, s in specs), floats)


def check_activations(plan: Plan, src: str) -> None:
    """Predicting allocates every layer's output for a tile of rows: that workspace may take
    LIMITS['activation_memory'] bytes, or twice the weights' bytes for a model with larger weights."""
    need = 4 * ACTIVATION_ROWS * plan.floats
    budget = max(LIMITS["activation_memory"], 2 * 4 * sum(math.prod(s) for _, s in plan.specs))
    if need > budget:
        raise fail(
            src,
            f"the layers' outputs take {4 * plan.floats} bytes per sample, {need} for {ACTIVATION_ROWS} rows, "
            f"more than the activation budget of {budget} bytes (LIMITS['activation_memory'], or twice "
            "the weights if more)",
        )


def check_unbuilt(specs, src: str) -> None:
    """A model saved before it was built carries no weights to account for its parameters: on one
    input feature they may take LIMITS['unbuilt_weights'] bytes."""
    need = 4 * sum(math.prod(s) for _, s in specs)
    if need > LIMITS["unbuilt_weights"]:
        raise fail(
            src,
            f"the model was saved unbuilt (no weights) and its layers need {need} bytes of parameters "
            f"for a single input feature, more than the limit of {LIMITS['unbuilt_weights']} "
            "(LIMITS['unbuilt_weights'])",
        )


def check_ref(layer, index, src: str, where: str) -> None:
    """A reference names one output: [name, k] for a layer with several outputs, a plain name otherwise."""
    n = layer._num_outputs()
    if (n == 1) != (index is None) or (index is not None and index >= n):
        raise fail(
            src,
            f"{where} refers to output {index!r} of layer '{layer.name}', which has {n} output(s); "
            "use the plain name for one output and [name, index] for several",
        )


def ref_key(ref: tuple[str, int | None]) -> tuple[str, int]:
    return ref[0], ref[1] or 0


def check_weights_match(specs, weights: dict | None, src: str) -> None:
    if weights is None:  # architecture only (from_config)
        total = sum(math.prod(s) for _, s in specs)
        if total * 4 > LIMITS[WEIGHTS]:
            raise fail(src, f"the architecture has {total} parameters, more than the weights limit allows")
        return
    want = dict(specs)
    missing = [k for k, _ in specs if k not in weights]
    extra = sorted(k for k in weights if k not in want)
    if missing or extra:
        raise fail(src, f"weights do not match the architecture: missing {missing}, unexpected {extra}")
    for k, shape in specs:
        if weights[k].shape != shape:
            raise fail(src, f"weight {k!r} has shape {weights[k].shape}, the architecture needs {shape}")


def build_within(model, arena: int, data_shapes=None) -> None:
    """Builds a loaded model; the core refuses an arena larger than the checked architecture's
    (which the file's weights account for) before allocating it."""
    model._max_params = arena
    try:
        model._ensure_built(data_shapes)
    finally:
        model._max_params = None


def with_rng_preserved(fn):
    """Building a model draws initialisation seeds; loading must not move the global stream. The
    warning that a layer drops a mask was given when the model was made; loading stays quiet."""
    gen = seeds.seed_generator()
    state = gen.bit_generator.state
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*does not support masking", category=UserWarning)
            warnings.filterwarnings("ignore", message=r".*not use the mask of its input sequence", category=UserWarning)
            return fn()
    finally:
        gen.bit_generator.state = state


def sequential_from_config(cfg, src: str, weights):
    Sequential = model_classes()[1]
    check_object(cfg, src, "Sequential config", ("name", "layers"), ("input_shape",))
    name = check_str(cfg["name"], src, "model name", 256)
    entries = check_list(cfg["layers"], src, "Sequential layers", LIMITS["layers"])
    built_layers = [make_layer(e, src, f"layer {i}") for i, e in enumerate(entries)]
    input_layer = None
    if built_layers and isinstance(built_layers[0], InputLayer):
        input_layer, built_layers = built_layers[0], built_layers[1:]
    if any(isinstance(l, InputLayer) for l in built_layers):
        raise fail(src, "a Sequential model may hold an InputLayer only as its first layer")
    if not built_layers:
        raise fail(src, "the Sequential model has no layers")
    names = [l.name for l in ([input_layer] if input_layer else []) + built_layers]
    if len(set(names)) != len(names):
        raise fail(src, f"layer names must be unique, got {names}")
    declared = input_layer.shape if input_layer is not None else built_layers[0]._input_shape_arg
    shape = None
    if "input_shape" in cfg:
        shape = check_shape(cfg["input_shape"], src, "Sequential input_shape")
        if declared is not None and tuple(declared) != shape:
            raise fail(
                src, f"Sequential input_shape {list(shape)} contradicts the declared input shape {list(declared)}"
            )
    elif declared is not None:
        shape = tuple(declared)
        if math.prod(shape) > LIMITS["elements_per_sample"]:
            raise fail(src, f"input shape {list(shape)} is too large")
    in_name = input_layer.name if input_layer is not None else "input_layer"
    chain = []
    for i, layer in enumerate(built_layers):
        chain.append((layer, [(in_name if i == 0 else built_layers[i - 1].name, None)]))
    if shape is None:
        # Unbuilt: no weights may be stored; bound the size the model would have on 1 feature.
        if callable(weights):
            weights = weights([])
        if weights:
            raise fail(src, "an unbuilt Sequential model (no input_shape) cannot hold weights")
        plan = preflight([(in_name, (1,))], chain, src)
        if weights is None:  # from_config: the user's own architecture
            check_weights_match(plan.specs, None, src)
        else:
            check_unbuilt(plan.specs, src)
    else:
        plan = preflight([(in_name, shape)], chain, src)
        if callable(weights):  # a reader that fetches tensors once it knows their expected shapes
            weights = weights(plan.specs)
        check_weights_match(plan.specs, weights, src)
    check_activations(plan, src)

    def build():
        model = Sequential(name=name)
        if input_layer is not None:
            model.add(input_layer)
        for layer in built_layers:
            model.add(layer)
        if shape is not None and (weights is not None or "input_shape" in cfg):
            build_within(model, plan.arena, [shape])
        return model

    return build


def functional_from_config(cfg, src: str, weights):
    Model = model_classes()[0]
    check_object(cfg, src, "Functional config", ("name", "layers", "input_layers", "output_layers"))
    name = check_str(cfg["name"], src, "model name", 256)
    entries = check_list(cfg["layers"], src, "Functional layers", LIMITS["layers"])
    input_names = [
        check_str(n, src, "input_layers entry", 1024)
        for n in check_list(cfg["input_layers"], src, "input_layers", 1024)
    ]
    outs = check_list(cfg["output_layers"], src, "output_layers", 1)
    if len(outs) != 1:
        raise fail(src, "output_layers must name exactly one layer")
    output_ref = parse_ref(outs[0], src, "output_layers entry")
    output_name = output_ref[0]
    by_name, inputs, nodes, order = {}, [], [], []
    for i, e in enumerate(entries):
        where = f"layer {i}"
        check_object(e, src, where, ("class_name", "config", "name", "inbound_layers"))
        lname = check_str(e["name"], src, f"{where} name", 1024)
        if lname in by_name:
            raise fail(src, f"two layers are named {lname!r}")
        layer = make_layer({"class_name": e["class_name"], "config": e["config"]}, src, f"layer '{lname}'")
        if layer.name != lname:
            raise fail(src, f"{where} is named {lname!r} but its config names it {layer.name!r}")
        inbound = [
            parse_ref(r, src, f"layer '{lname}' inbound_layers entry")
            for r in check_list(e["inbound_layers"], src, f"layer '{lname}' inbound_layers", 1024)
        ]
        for n, k in inbound:
            if n not in by_name:
                raise fail(src, f"layer '{lname}' takes input from {n!r}, which is not a layer defined before it")
            check_ref(by_name[n], k, src, f"layer '{lname}'")
        is_input = isinstance(layer, InputLayer)
        if is_input != (not inbound):
            raise fail(
                src, f"layer '{lname}': an InputLayer must have no inbound layers and any other layer at least one"
            )
        if is_input:
            if lname not in input_names:
                raise fail(src, f"InputLayer '{lname}' is not listed in input_layers")
            inputs.append((lname, tuple(layer.shape)))
        else:
            nodes.append((layer, list(inbound)))
        by_name[lname] = layer
        order.append((layer, list(inbound)))
    if sorted(input_names) != sorted(n for n, _ in inputs) or len(set(input_names)) != len(input_names):
        raise fail(src, f"input_layers {input_names} must list each InputLayer exactly once")
    if output_name not in by_name or isinstance(by_name[output_name], InputLayer):
        raise fail(src, f"output layer {output_name!r} is not a non-input layer of the model")
    check_ref(by_name[output_name], output_ref[1], src, "output_layers")
    used = {output_name}
    for layer, inbound in reversed(order):
        if layer.name in used:
            used.update(n for n, _ in inbound)
    unused = [l.name for l, _ in nodes if l.name not in used] + [n for n in input_names if n not in used]
    if unused:
        raise fail(src, f"layer(s) {unused} do not lead to the output")
    for lname, shape in inputs:
        if math.prod(shape) > LIMITS["elements_per_sample"]:
            raise fail(src, f"input '{lname}' shape {list(shape)} is too large")
    for layer, inbound in nodes:  # a Hashing on a string Input encodes at the data boundary
        if hasattr(layer, "_string_input") and any(
            isinstance(by_name[n], InputLayer) and by_name[n].dtype == "string" for n, _ in inbound
        ):
            layer._string_input = True
    plan = preflight(inputs, nodes, src)
    if callable(weights):  # a reader that fetches tensors once it knows their expected shapes
        weights = weights(plan.specs)
    check_weights_match(plan.specs, weights, src)
    check_activations(plan, src)

    def build():
        tensors = {n: by_name[n].output for n in input_names}

        def tensor(ref):
            out = tensors[ref[0]]
            return out[ref[1]] if ref[1] is not None else out

        for layer, inbound in nodes:
            args = [tensor(r) for r in inbound]
            tensors[layer.name] = layer(args[0] if len(args) == 1 else args)
        model = Model(inputs=[tensors[n] for n in input_names], outputs=tensor(output_ref), name=name)
        if weights is not None:
            build_within(model, plan.arena)
        return model

    return build


def build_architecture(doc_model, src: str, weights):
    """Validates an architecture and returns a function that builds the model."""
    check_object(doc_model, src, "model", ("class_name", "config"))
    kind = doc_model["class_name"]
    if kind == "Sequential":
        return sequential_from_config(doc_model["config"], src, weights)
    if kind == "Functional":
        return functional_from_config(doc_model["config"], src, weights)
    raise fail(src, f"model class {kind!r} is not one of 'Sequential', 'Functional'")


def model_from_config(config, cls=None, src: str = "model config"):
    """Builds a new, freshly initialised model from `Model.get_config()` output (Keras's from_config)."""
    Sequential = model_classes()[1]
    if not isinstance(config, dict):
        raise TypeError(f"from_config: config must be a dict, got {type(config).__name__}")
    config = normalized(config)
    functional = "input_layers" in config
    if cls is Sequential and functional:
        raise fail(src, "this is a functional model's config; use Model.from_config")
    build = build_architecture(
        {"class_name": "Functional" if functional else "Sequential", "config": config}, src, None
    )
    return build()


def from_config_document(raw: bytes):
    """Unpickles a model that was pickled before it was built: its config.json document only."""
    src = "pickled model"

    def run():
        doc = check_object(
            loads(raw, src, CONFIG), src, CONFIG, ("model", "compile_config", "input_schema"), ("explanations",)
        )
        model = with_rng_preserved(build_architecture(doc["model"], src, None))
        check_schema(doc["input_schema"], model, src)
        if doc["compile_config"] is not None:
            compile_from_entry(model, doc["compile_config"], src)
        return model

    return guard(run, src)


# -- loading: compile config and optimizer state -------------------------------------------------
def metric_from_entry(entry, src: str, where: str):
    if isinstance(entry, str):
        if entry not in ("accuracy", "acc"):
            try:
                metrics.get(entry)  # a lookup in maasfin's table of metric names
            except ValueError:
                raise fail(src, f"{where} is unknown metric {entry!r}") from None
        return entry
    cls, config = resolve_entry(entry, metric_classes(), src, where)
    return construct(cls, config, src, where)


def optimizer_from_entry(entry, src: str):
    """The optimizer; a learning-rate schedule in its config is resolved through the schedule
    allowlist here, never by the optimizer looking up a name from the file."""
    cls, config = resolve_entry(entry, optimizer_classes(), src, "compile_config.optimizer")
    config = dict(config)
    lr = config.get("learning_rate")
    if isinstance(lr, dict):
        scls, scfg = resolve_entry(lr, schedule_classes(), src, "optimizer learning_rate schedule")
        config["learning_rate"] = construct(scls, scfg, src, "learning_rate schedule")
    try:
        params = inspect.signature(cls).parameters
        var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        optimizer = cls(**{k: v for k, v in config.items() if var_kw or k in params})
    except Exception as e:  # the optimizer's own validation refused the values
        raise fail(src, f"optimizer ({cls.__name__}) has an invalid config: {e}") from None
    check_round_trip(optimizer, entry["config"], src, "optimizer")
    return optimizer


def compile_from_entry(model, cc, src: str):
    check_object(cc, src, "compile_config", ("optimizer", "loss", "metrics", "weighted_metrics"))
    optimizer = optimizer_from_entry(cc["optimizer"], src)
    cls, config = resolve_entry(cc["loss"], loss_classes(), src, "compile_config.loss")
    loss = construct(cls, config, src, "loss")
    metrics = [
        metric_from_entry(m, src, f"compile_config.metrics[{i}]")
        for i, m in enumerate(check_list(cc["metrics"], src, "compile_config.metrics", 64))
    ]
    weighted = [
        metric_from_entry(m, src, f"compile_config.weighted_metrics[{i}]")
        for i, m in enumerate(check_list(cc["weighted_metrics"], src, "compile_config.weighted_metrics", 64))
    ]
    try:
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics, weighted_metrics=weighted or None)
    except (TypeError, ValueError) as e:
        raise fail(src, f"compile_config is invalid: {e}") from None


def check_schema(schema, model, src: str) -> None:
    check_object(schema, src, "input_schema", ("inputs", "feature_names"))
    want = schema_of(model)["inputs"]
    got = check_list(schema["inputs"], src, "input_schema.inputs", 1024)
    if normalized(got) != normalized(want):
        raise fail(src, f"input_schema.inputs {got} does not match the architecture's inputs {want}")
    names = schema["feature_names"]
    if names is not None:
        names = check_list(names, src, "input_schema.feature_names", LIMITS["elements_per_sample"])
        for i, c in enumerate(names):
            check_str(c, src, f"input_schema.feature_names[{i}]", 1024, allow_empty=True)
        shapes = [i["shape"] for i in want]
        if len(shapes) != 1 or shapes[0] != [len(names)]:
            raise fail(
                src, f"input_schema.feature_names has {len(names)} names but the model's input shape is {shapes}"
            )
        model._feature_names = list(names)
