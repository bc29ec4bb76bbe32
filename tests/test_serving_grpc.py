"""The Open Inference Protocol over gRPC (maasfin.serving.protocols.grpc): tritonclient.grpc gets the
same outputs as REST, keys as metadata (UNAUTHENTICATED, PERMISSION_DENIED), typed contents and raw
tensors, health and metadata, errors as status codes, audit lines."""

import json

import grpc
import numpy as np
import pytest
import requests
import tritonclient.grpc as tgrpc
from serving_support import ServerThread, credit_frame, credit_model, free_socket, plain_model, put
from tritonclient.utils import InferenceServerException

from maasfin.serving import add_key, create_app
from maasfin.serving.protocols.oip import grpc_predict_v2_pb2 as pb
from maasfin.serving.protocols.oip import grpc_predict_v2_pb2_grpc as pb_grpc

TIMEOUT = 10


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grpc")
    repo = tmp / "repo"
    put(repo, "credit", 1, credit_model(seed=21))
    put(repo, "plain", 1, plain_model(seed=22, d=3))
    keys = tmp / "keys.json"
    key = add_key(keys, "scoring", ["*"])
    other = add_key(keys, "other", ["nothing"])
    s = free_socket()
    port = s.getsockname()[1]
    s.close()
    audit = tmp / "audit.jsonl"
    app = create_app(
        repo, poll_seconds=0, api_keys=str(keys), audit_log=str(audit), grpc_port=port, grpc_host="127.0.0.1"
    )
    with ServerThread(app) as srv:
        client = tgrpc.InferenceServerClient(f"127.0.0.1:{port}")
        yield {"srv": srv, "port": port, "key": key, "other": other, "client": client, "audit": audit}
        client.close()


def _auth(key):
    return {"authorization": f"Bearer {key}"}


def test_tritonclient_gets_the_same_outputs_as_rest(served):
    client, key = served["client"], served["key"]
    x = credit_frame(37, seed=5).to_numpy().astype(np.float32)
    meta = client.get_model_metadata("credit", headers=_auth(key))
    assert meta.name == "credit" and meta.versions == ["1"] and meta.inputs[0].datatype == "FP32"
    name = meta.inputs[0].name
    inp = tgrpc.InferInput(name, list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    result = client.infer("credit", [inp], headers=_auth(key), request_id="abc-1")
    y_grpc = result.as_numpy(meta.outputs[0].name)
    body = {"inputs": [{"name": name, "shape": list(x.shape), "datatype": "FP32", "data": x.reshape(-1).tolist()}]}
    r = requests.post(served["srv"].url + "/v2/models/credit/infer", json=body, headers=_auth(key), timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    y_rest = np.asarray(out["data"], dtype=np.float32).reshape(out["shape"])
    assert y_grpc.dtype == np.float32 and y_grpc.shape == y_rest.shape == (37, 1)
    assert np.array_equal(y_grpc, y_rest)
    response = result.get_response()
    assert response.id == "abc-1" and response.model_version == "1"
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("credit", headers=_auth(key))
    # the same tensor as typed contents (no raw_input_contents) gives the same outputs
    with grpc.insecure_channel(f"127.0.0.1:{served['port']}") as ch:
        stub = pb_grpc.GRPCInferenceServiceStub(ch)
        req = pb.ModelInferRequest(model_name="credit")
        t = req.inputs.add(name=name, datatype="FP32", shape=list(x.shape))
        t.contents.fp32_contents.extend(x.reshape(-1).tolist())
        resp = stub.ModelInfer(req, metadata=tuple(_auth(key).items()), timeout=TIMEOUT)
    y_typed = np.frombuffer(resp.raw_output_contents[0], dtype="<f4").reshape(list(resp.outputs[0].shape))
    assert np.array_equal(y_typed, y_rest)
    lines = [json.loads(line) for line in served["audit"].read_text().splitlines()]
    grpc_lines = [rec for rec in lines if rec["protocol"] == "grpc"]
    assert len(grpc_lines) == 2 and all(r["status"] == 200 and r["rows"] == 37 for r in grpc_lines)
    assert grpc_lines[0]["key"] == "scoring" and grpc_lines[0]["outputs_sha256"] == grpc_lines[1]["outputs_sha256"]


def test_keys_and_errors_map_to_status_codes(served):
    client, key = served["client"], served["key"]
    x = np.zeros((2, 3), dtype=np.float32)
    inp = tgrpc.InferInput("input_layer", [2, 3], "FP32")
    inp.set_data_from_numpy(x)
    cases = [
        ({}, "plain", "UNAUTHENTICATED"),
        (_auth("wrong-key"), "plain", "UNAUTHENTICATED"),
        (_auth(served["other"]), "plain", "PERMISSION_DENIED"),
        (_auth(key), "missing", "NOT_FOUND"),
    ]
    for headers, model, code in cases:
        with pytest.raises(InferenceServerException) as info:
            client.infer(model, [inp], headers=headers)
        assert info.value.status() == f"StatusCode.{code}", (model, info.value)
    with pytest.raises(InferenceServerException) as info:
        client.get_model_metadata("plain", headers=_auth("wrong-key"))
    assert info.value.status() == "StatusCode.UNAUTHENTICATED"
    bad = tgrpc.InferInput("input_layer", [2, 4], "FP32")
    bad.set_data_from_numpy(np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(InferenceServerException) as info:
        client.infer("plain", [bad], headers=_auth(key))
    assert info.value.status() == "StatusCode.INVALID_ARGUMENT"
    rest = requests.post(
        served["srv"].url + "/v2/models/plain/infer",
        json={"inputs": [{"name": "input_layer", "shape": [2, 4], "datatype": "FP32", "data": [0.0] * 8}]},
        headers=_auth(key),
        timeout=TIMEOUT,
    )
    assert rest.status_code == 400 and rest.json()["error"] in str(info.value)
    ok = client.infer("plain", [inp], headers=_auth(key))
    assert ok.as_numpy(ok.get_response().outputs[0].name).shape == (2, 2)
