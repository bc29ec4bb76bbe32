"""The repository and the catalogue of bad requests that every front end (the ASGI app and the
Flask blueprint) must answer with the same exact 4xx status and {"error": message}."""

import gzip
import json

import numpy as np
from serving_support import credit_model, plain_model, put, put_labels, two_input_model

import maasfin as mf

MAX_BODY = 256 * 1024


def catalogue_repo(repo):
    """credit 1 and 2 (labels stable/canary), plain 1 (no feature names), joint 1 (two inputs);
    returns the in-process models keyed by (name, version)."""
    put(repo, "credit", 1, credit_model(seed=1))
    put(repo, "credit", 2, credit_model(seed=2, epochs=2))
    put_labels(repo, "credit", {"stable": 1, "canary": 2})
    put(repo, "plain", 1, plain_model(seed=3))
    put(repo, "joint", 1, two_input_model(seed=4))
    return {
        (n, v): mf.models.load_model(repo / n / str(v) / "model.maas", compile=False)
        for n, v in [("credit", 1), ("credit", 2), ("plain", 1), ("joint", 1)]
    }


# -- the catalogue of bad requests ------------------------------------------------------------------
REC = {"income": 0.5, "debt_ratio": 0.2, "age": 0.1, "utilisation": 0.3, "late_payments": 0.0}
ROW = [0.5, 0.2, 0.1, 0.3, 0.0]
SHAPE_MSG = (
    "input_data does not match input 'input_layer' of model 'credit', which takes shape (None, 5): "
    "rows of 5 number(s) expected, got rows of 4"
)
NAN_MSG = (
    ": NaN and infinity are not allowed (JSON has no such numbers); impute or drop missing values before sending them"
)
HUGE_INT_MSG = "request body holds an integer of more than 4300 digits, which no model input can take"
FEATS = "the model's features are ['income', 'debt_ratio', 'age', 'utilisation', 'late_payments']"


def _binary(size_declared: int, payload: bytes):
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "input_layer",
                    "shape": [1, 5],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": size_declared},
                }
            ]
        }
    ).encode()
    return head + payload, {"Inference-Header-Content-Length": str(len(head))}


def _v2(inputs, **extra):
    return {"inputs": inputs, **extra}


def _t(data, shape=(1, 5), dtype="FP32", name="input_layer"):
    return {"name": name, "shape": list(shape), "datatype": dtype, "data": data}


BAD = [
    # (id, path, body, headers, status, message)
    (
        "not-json",
        "/v1/predict",
        b"income=1",
        {},
        400,
        "request body is not valid JSON: Expecting value at line 1 column 1",
    ),
    ("empty", "/v1/predict", b"", {}, 400, "request body is empty; send a JSON object"),
    ("not-utf8", "/v1/predict", b"\xff\xfe{}", {}, 400, "request body is not UTF-8 text (invalid byte at offset 0)"),
    ("array-body", "/v1/predict", [1, 2], {}, 400, "request body must be a JSON object, got an array"),
    (
        "truncated",
        "/v1/predict",
        b'{"model_name": "credit", "input_data": [[1,',
        {},
        400,
        "request body is not valid JSON: Expecting value at line 1 column 44",
    ),
    ("no-model", "/v1/predict", {"input_data": [ROW]}, {}, 400, "the request has no 'model_name'"),
    (
        "model-number",
        "/v1/predict",
        {"model_name": 3, "input_data": [ROW]},
        {},
        400,
        "model_name must be a non-empty string, got a number",
    ),
    (
        "unknown-model",
        "/v1/predict",
        {"model_name": "nope", "input_data": [ROW]},
        {},
        404,
        "model 'nope' is not in the repository",
    ),
    (
        "unknown-field",
        "/v1/predict",
        {"model_name": "credit", "inputs": [ROW]},
        {},
        400,
        "unknown field(s) ['inputs']; the request takes 'model_name', 'input_data' and optionally 'model_version' "
        "(a version number or a label) and 'routing_key'",
    ),
    (
        "no-input",
        "/v1/predict",
        {"model_name": "credit"},
        {},
        400,
        "the request has no 'input_data' (a record, a list of records or a list of rows)",
    ),
    (
        "input-string",
        "/v1/predict",
        {"model_name": "credit", "input_data": "1,2,3"},
        {},
        400,
        "input_data must be an object (one record), a list of records or a list of rows, got a string",
    ),
    (
        "nan-record",
        "/v1/predict",
        b'{"model_name": "credit", "input_data": {"income": 0.5, "debt_ratio": NaN, '
        b'"age": 0.1, "utilisation": 0.3, "late_payments": 0.0}}',
        {},
        400,
        'input_data["debt_ratio"] is NaN' + NAN_MSG,
    ),
    (
        "inf-row",
        "/v1/predict",
        b'{"model_name": "credit", "input_data": [[0.5, 0.2, -Infinity, 0.3, 0.0]]}',
        {},
        400,
        "input_data[0][2] is -Infinity" + NAN_MSG,
    ),
    (
        "string-value",
        "/v1/predict",
        {"model_name": "credit", "input_data": [REC, {**REC, "age": "41"}]},
        {},
        400,
        'input_data[1]["age"] is "41" (a string), expected a number',
    ),
    (
        "bool-value",
        "/v1/predict",
        {"model_name": "credit", "input_data": [[0.5, True, 0.1, 0.3, 0.0]]},
        {},
        400,
        "input_data[0][1] is true (a boolean), expected a number",
    ),
    (
        "null-value",
        "/v1/predict",
        {"model_name": "credit", "input_data": {**REC, "income": None}},
        {},
        400,
        'input_data["income"] is null, expected a number',
    ),
    (
        "missing-feature",
        "/v1/predict",
        {"model_name": "credit", "input_data": [{k: v for k, v in REC.items() if k != "age"}]},
        {},
        400,
        f"input_data[0] is missing feature(s) ['age']; {FEATS}",
    ),
    (
        "extra-feature",
        "/v1/predict",
        {"model_name": "credit", "input_data": {**REC, "zip": 1}},
        {},
        400,
        f"input_data has unknown feature(s) ['zip']; {FEATS}",
    ),
    (
        "mixed-records",
        "/v1/predict",
        {"model_name": "credit", "input_data": [REC, ROW]},
        {},
        400,
        "input_data[1] is an array, but input_data[0] is a record: send all records as objects keyed by feature name",
    ),
    ("narrow-rows", "/v1/predict", {"model_name": "credit", "input_data": [ROW[:4]]}, {}, 400, SHAPE_MSG),
    (
        "ragged-rows",
        "/v1/predict",
        {"model_name": "credit", "input_data": [ROW, ROW[:4]]},
        {},
        400,
        "input_data is not a rectangular array: input_data[0] has 5 values but input_data[1] has 4 values",
    ),
    (
        "flat-row",
        "/v1/predict",
        {"model_name": "credit", "input_data": ROW},
        {},
        400,
        "input_data does not match input 'input_layer' of model 'credit', which takes shape (None, 5): a list of rows "
        "expected, got a flat list of 5 number(s); wrap one row in brackets: [[...]]",
    ),
    (
        "no-rows",
        "/v1/predict",
        {"model_name": "credit", "input_data": []},
        {},
        400,
        "input_data is empty: send at least one record or row",
    ),
    (
        "too-big-number",
        "/v1/predict",
        {"model_name": "credit", "input_data": [[1e39, 0, 0, 0, 0]]},
        {},
        400,
        "input_data[0][0] is 1e+39, outside the float32 range (about ±3.4e38) the model computes in",
    ),
    (
        "records-no-names",
        "/v1/predict",
        {"model_name": "plain", "input_data": {"a": 1}},
        {},
        400,
        "input_data holds records (objects), but model 'plain' has no feature names (it was not trained on a "
        "DataFrame): send rows instead, each a list of 3 number(s)",
    ),
    (
        "bad-version",
        "/v1/predict",
        {"model_name": "credit", "model_version": 7, "input_data": [ROW]},
        {},
        404,
        "model 'credit' has no available version 7; available versions: [1, 2]",
    ),
    (
        "bad-label",
        "/v1/predict",
        {"model_name": "credit", "model_version": "beta", "input_data": [ROW]},
        {},
        404,
        "model 'credit' has no label 'beta'; labels: ['canary', 'stable']",
    ),
    (
        "bad-version-type",
        "/v1/predict",
        {"model_name": "credit", "model_version": 1.5, "input_data": [ROW]},
        {},
        400,
        "model_version must be a version number or a label name, got 1.5",
    ),
    (
        "oversized",
        "/v1/predict",
        {"model_name": "credit", "input_data": [ROW] * 20000},
        {},
        413,
        "the request body is larger than the limit of 262144 bytes",
    ),
    (
        "zip-bomb",
        "/v1/predict",
        gzip.compress(b" " * 1_000_000),
        {"Content-Encoding": "gzip"},
        413,
        "the decompressed request body is larger than the limit of 262144 bytes",
    ),
    (
        "bad-encoding",
        "/v1/predict",
        {"model_name": "credit", "input_data": [ROW]},
        {"Content-Encoding": "br"},
        415,
        "Content-Encoding 'br' is not supported (use gzip, deflate or none)",
    ),
    # TF Serving
    (
        "tf-both",
        "/v1/models/credit:predict",
        {"instances": [ROW], "inputs": [ROW]},
        {},
        400,
        "the request has both 'instances' and 'inputs'; send one of them",
    ),
    (
        "tf-neither",
        "/v1/models/credit:predict",
        {"signature_name": "serving_default"},
        {},
        400,
        "the request needs 'instances' (row format) or 'inputs' (columnar format)",
    ),
    (
        "tf-instances-type",
        "/v1/models/credit:predict",
        {"instances": {"x": 1}},
        {},
        400,
        "instances must be a list (one element per row), got an object",
    ),
    (
        "tf-signature",
        "/v1/models/credit:predict",
        {"signature_name": "classify", "instances": [ROW]},
        {},
        400,
        "signature_name \"classify\" (a string) is unknown; the only signature is 'serving_default'",
    ),
    (
        "tf-version",
        "/v1/models/credit/versions/abc:predict",
        {"instances": [ROW]},
        {},
        400,
        "version 'abc' in the URL is not a version number",
    ),
    (
        "tf-unknown-model",
        "/v1/models/nope:predict",
        {"instances": [ROW]},
        {},
        404,
        "model 'nope' is not in the repository",
    ),
    (
        "tf-label",
        "/v1/models/credit/labels/beta:predict",
        {"instances": [ROW]},
        {},
        404,
        "model 'credit' has no label 'beta'; labels: ['canary', 'stable']",
    ),
    (
        "tf-columns",
        "/v1/models/credit:predict",
        {"inputs": {"income": [1, 2], "debt_ratio": [1], "age": [1], "utilisation": [1], "late_payments": [1]}},
        {},
        400,
        'inputs["debt_ratio"] has 1 values but inputs["income"] has 2: every column needs one value per row',
    ),
    # Open Inference Protocol v2
    (
        "v2-shape",
        "/v2/models/credit/infer",
        _v2([_t([1, 2, 3, 4], shape=(1, 4))]),
        {},
        400,
        "input 'input_layer' has shape [1, 4], but model 'credit' expects [-1, 5]",
    ),
    (
        "v2-rank",
        "/v2/models/credit/infer",
        _v2([_t(ROW, shape=(5,))]),
        {},
        400,
        "input 'input_layer' has shape [5], but model 'credit' expects [-1, 5]",
    ),
    (
        "v2-bytes",
        "/v2/models/credit/infer",
        _v2([_t(["a"] * 5, dtype="BYTES")]),
        {},
        400,
        "input 'input_layer' has datatype 'BYTES', which is not a numeric datatype; model 'credit' takes FP32 "
        "(also accepted: FP64, FP16, INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64)",
    ),
    (
        "v2-dtype",
        "/v2/models/credit/infer",
        _v2([_t(ROW, dtype="FLOAT")]),
        {},
        400,
        "input 'input_layer' has datatype 'FLOAT', which is not a known datatype; model 'credit' takes FP32 "
        "(also accepted: FP64, FP16, INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64)",
    ),
    (
        "v2-count",
        "/v2/models/credit/infer",
        _v2([_t(ROW[:4])]),
        {},
        400,
        "input 'input_layer' has 4 values in 'data', but its shape [1, 5] needs 5",
    ),
    (
        "v2-string-data",
        "/v2/models/credit/infer",
        _v2([_t([0.5, "x", 0, 0, 0])]),
        {},
        400,
        "input 'input_layer': data[1] is \"x\" (a string), expected a number",
    ),
    (
        "v2-int-data",
        "/v2/models/credit/infer",
        _v2([_t([1, 2.5, 3, 4, 5], dtype="INT32")]),
        {},
        400,
        "input 'input_layer' is INT32, but data[1] is 2.5, not an integer",
    ),
    (
        "v2-unknown-input",
        "/v2/models/credit/infer",
        _v2([_t(ROW, name="x")]),
        {},
        400,
        "unknown input 'x'; model 'credit' has input(s) ['input_layer']",
    ),
    (
        "v2-missing-input",
        "/v2/models/joint/infer",
        _v2([_t([1, 2, 3], shape=(1, 3), name="applicant")]),
        {},
        400,
        "missing input(s) ['bureau']; model 'joint' has input(s) ['applicant', 'bureau']",
    ),
    (
        "v2-rows-differ",
        "/v2/models/joint/infer",
        _v2([_t([1, 2, 3], shape=(1, 3), name="applicant"), _t([1, 2, 3, 4], shape=(2, 2), name="bureau")]),
        {},
        400,
        "inputs: the inputs have different numbers of rows {'applicant': 1, 'bureau': 2}",
    ),
    (
        "v2-no-inputs",
        "/v2/models/credit/infer",
        {"inputs": []},
        {},
        400,
        "'inputs' must be a non-empty list of tensors {name, shape, datatype, data}",
    ),
    (
        "v2-output",
        "/v2/models/credit/infer",
        _v2([_t(ROW)], outputs=[{"name": "logits"}]),
        {},
        400,
        "unknown output 'logits'; the model's output is 'pd'",
    ),
    (
        "v2-binary-size",
        "/v2/models/credit/infer",
        *_binary(16, b"\0" * 16),
        400,
        "input 'input_layer': binary_data_size is 16 bytes, but shape [1, 5] of FP32 needs 20",
    ),
    (
        "v2-binary-nan",
        "/v2/models/credit/infer",
        *_binary(20, np.array([0, np.nan, 0, 0, 0], dtype="<f4").tobytes()),
        400,
        "input 'input_layer' contains NaN at row 0, column 1 (1 non-finite value(s) in total); impute or drop missing "
        "values before passing them to the model",
    ),
    (
        "v2-binary-short",
        "/v2/models/credit/infer",
        *_binary(20, b"\0" * 8),
        400,
        "input 'input_layer': the request's binary data ends after 8 bytes, but the inputs declare at least 20",
    ),
    (
        "v2-binary-extra",
        "/v2/models/credit/infer",
        *_binary(20, b"\0" * 24),
        400,
        "the request has 24 bytes of binary data, but its inputs declare 20",
    ),
    (
        "v2-header-length",
        "/v2/models/credit/infer",
        _v2([_t(ROW)]),
        {"Inference-Header-Content-Length": "99999"},
        400,
        "the Inference-Header-Content-Length header is 99999, but the body has "
        f"{len(json.dumps(_v2([_t(ROW)])))} bytes; "
        "it must be the length of "
        "the JSON header within the body",
    ),
    (
        "v2-header-length-text",
        "/v2/models/credit/infer",
        _v2([_t(ROW)]),
        {"Inference-Header-Content-Length": "ten"},
        400,
        "the Inference-Header-Content-Length header is 'ten', not a number of bytes",
    ),
    (
        "v2-version",
        "/v2/models/credit/versions/3/infer",
        _v2([_t(ROW)]),
        {},
        404,
        "model 'credit' has no available version 3; available versions: [1, 2]",
    ),
    (
        "v2-no-binary-header",
        "/v2/models/credit/infer",
        {
            "inputs": [
                {"name": "input_layer", "shape": [1, 5], "datatype": "FP32", "parameters": {"binary_data_size": 20}}
            ]
        },
        {},
        400,
        "input 'input_layer': the request's binary data ends after 0 bytes, but the inputs declare at least 20",
    ),
    (
        "huge-int-simple",
        "/v1/predict",
        b'{"model_name": "credit", "input_data": [[' + b"9" * 5000 + b", 0, 0, 0, 0]]}",
        {},
        400,
        HUGE_INT_MSG,
    ),
    (
        "huge-int-tfserving",
        "/v1/models/credit:predict",
        b'{"instances": [[' + b"9" * 5000 + b"]]}",
        {},
        400,
        HUGE_INT_MSG,
    ),
    (
        "huge-int-v2",
        "/v2/models/credit/infer",
        b'{"inputs": [{"name": "input_layer", "shape": [1, 5], "datatype": "INT64", "data": [' + b"9" * 5000 + b"]}]}",
        {},
        400,
        HUGE_INT_MSG,
    ),
    (
        "huge-int-explain",
        "/v1/explain",
        b'{"model_name": "credit", "input_data": [[1, 0, 0, 0, 0]], "top_k": ' + b"9" * 5000 + b"}",
        {},
        400,
        HUGE_INT_MSG,
    ),
    (
        "v2-shape-overflows-int64",
        "/v2/models/credit/infer",
        _v2([_t(ROW, shape=(2**62 + 1, 5))]),
        {},
        400,
        "input 'input_layer' has shape [4611686018427387905, 5], 23058430092136939525 values: "
        "more than any request can carry",
    ),
    (
        "tf-explain-arabic-digit",
        "/v1/models/credit/versions/١:explain",
        {"instances": [ROW]},
        {},
        400,
        "version '١' in the URL is not a version number",
    ),
    (
        "tf-explain-superscript",
        "/v1/models/credit/versions/²:explain",
        {"instances": [ROW]},
        {},
        400,
        "version '²' in the URL is not a version number",
    ),
    (
        "v2-explain-circled",
        "/v2/models/credit/versions/①/explain",
        _v2([_t(ROW)]),
        {},
        400,
        "version '①' in the URL is not a version number",
    ),
    (
        "v2-infer-arabic-digit",
        "/v2/models/credit/versions/١/infer",
        _v2([_t(ROW)]),
        {},
        400,
        "version '١' in the URL is not a version number",
    ),
    (
        "tf-predict-superscript",
        "/v1/models/credit/versions/²:predict",
        {"instances": [ROW]},
        {},
        400,
        "version '²' in the URL is not a version number",
    ),
]
