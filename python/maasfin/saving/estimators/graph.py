"""An estimator's ONNX graph, checked as data before ONNX Runtime sees it, and its inference session.

The reader refuses, as a `ModelFileError` naming the file: bytes that are not an ONNX model,
external-data references (a graph that would read other files), operators outside the standard
domains ("" and "ai.onnx.ml"), local functions, subgraphs (If/Loop/Scan bodies), training info,
tensors whose declared size exceeds their bytes, and inputs/outputs other than the config names.
"""

from __future__ import annotations

import math

from maasfin.saving.file_format import fail

DOMAINS = ("", "ai.onnx", "ai.onnx.ml")
MAX_NODES = 1_000_000
MAX_OPSET = 23
_ITEMSIZE = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2}


def require_onnxruntime(what: str):
    try:
        import onnxruntime
    except ImportError as e:
        raise ImportError(f"{what} needs ONNX Runtime: pip install 'maasfin[onnx]'") from e
    return onnxruntime


def require_onnx(what: str):
    try:
        import onnx
    except ImportError as e:
        raise ImportError(f"{what} needs the onnx package: pip install 'maasfin[onnx]'") from e
    return onnx


def _check_tensor(t, src: str, where: str) -> None:
    if t.data_location == 1 or len(t.external_data):  # TensorProto.EXTERNAL
        raise fail(src, f"{where} refers to external data; estimator graphs must hold all their data")
    dims = list(t.dims)
    if any(d < 0 for d in dims) or len(dims) > 8:
        raise fail(src, f"{where} has an invalid shape {dims}")
    n = math.prod(dims)
    if t.data_type == 8:  # strings: one entry per element
        if len(t.string_data) != n:
            raise fail(src, f"{where} declares {n} strings but holds {len(t.string_data)}")
        return
    size = _ITEMSIZE.get(t.data_type)
    if size is None:
        raise fail(src, f"{where} has unsupported data type {t.data_type}")
    if t.raw_data:
        if len(t.raw_data) != n * size:
            raise fail(src, f"{where} declares {n} values but holds {len(t.raw_data)} bytes")
        return
    held = (
        len(t.float_data) + len(t.int32_data) + len(t.int64_data) + len(t.double_data) + len(t.uint64_data)
    )  # typed fields
    if held != n:
        raise fail(src, f"{where} declares {n} values but holds {held}")


def check_graph(blob, src: str, inputs: list[str], outputs: list[str]):
    """The parsed ModelProto of `blob`, after the checks of the module docstring."""
    onnx = require_onnx("loading an estimator")
    try:
        model = onnx.ModelProto.FromString(bytes(blob))
    except Exception as e:  # DecodeError and friends: not a protobuf
        raise fail(src, f"model.onnx is not an ONNX model ({type(e).__name__})") from None
    g = model.graph
    if not model.opset_import:
        raise fail(src, "model.onnx declares no operator set")
    for op in model.opset_import:
        if op.domain not in DOMAINS:
            raise fail(src, f"model.onnx imports the non-standard operator domain {op.domain!r}")
        if not 1 <= op.version <= MAX_OPSET:
            raise fail(src, f"model.onnx imports operator set {op.domain or 'ai.onnx'} version {op.version}")
    if len(model.functions) or len(model.training_info):
        raise fail(src, "model.onnx holds local functions or training info; estimator graphs hold neither")
    if len(g.node) > MAX_NODES:
        raise fail(src, f"model.onnx has {len(g.node)} nodes, more than the limit of {MAX_NODES}")
    for i, node in enumerate(g.node):
        if node.domain not in DOMAINS:
            raise fail(src, f"model.onnx node {i} ({node.op_type!r}) uses the non-standard domain {node.domain!r}")
        for a in node.attribute:
            if a.type in (5, 10) or a.HasField("g") or len(a.graphs):  # GRAPH, GRAPHS
                raise fail(src, f"model.onnx node {i} ({node.op_type!r}) holds a subgraph")
            if a.HasField("t"):
                _check_tensor(a.t, src, f"model.onnx node {i} attribute {a.name!r}")
            for j, t in enumerate(a.tensors):
                _check_tensor(t, src, f"model.onnx node {i} attribute {a.name!r}[{j}]")
    for t in g.initializer:
        _check_tensor(t, src, f"model.onnx initializer {t.name[:100]!r}")
    if len(g.sparse_initializer):
        raise fail(src, "model.onnx holds sparse initializers")
    names_in = [i.name for i in g.input if i.name not in {t.name for t in g.initializer}]
    if names_in != inputs:
        raise fail(src, f"model.onnx takes inputs {names_in[:20]}, but config.json names {inputs[:20]}")
    names_out = [o.name for o in g.output]
    missing = [o for o in outputs if o not in names_out]
    if missing:
        raise fail(src, f"model.onnx has no output(s) {missing}; its outputs are {names_out[:20]}")
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # ValidationError
        raise fail(src, f"model.onnx is not a valid ONNX model: {str(e)[:300]}") from None
    return model


def session(blob, src: str, threads: int = 1):
    """An ONNX Runtime session over checked bytes: one intra-op thread (the server runs requests
    side by side; its `run` is thread-safe and releases the GIL), no external initializers."""
    ort = require_onnxruntime("an estimator model")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.disable_external_initializers", "1")  # belt and braces
    try:
        return ort.InferenceSession(bytes(blob), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # Fail / InvalidGraph / NotImplemented
        raise fail(src, f"model.onnx cannot be run by ONNX Runtime: {str(e)[:300]}") from None
