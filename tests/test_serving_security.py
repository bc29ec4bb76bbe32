"""API keys (401 vs 403, scopes, both headers, reload), the request timeout, and the audit log:
1,000 mixed requests make exactly 1,000 complete lines, across size-based rotation."""

import glob
import json
import os
import stat
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import requests
import tritonclient.http as triton
from serving_support import ServerThread, credit_frame, credit_model, put

import maasfin.serving.service as serving_service
from maasfin.serving import add_key, create_app, input_digest
from maasfin.serving.auth import hash_key

TIMEOUT = 10


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    put(repo, "credit", 1, credit_model(seed=71))
    put(repo, "fraud", 1, credit_model(seed=72))
    return repo


def _keys(tmp_path):
    path = tmp_path / "keys.json"
    scoring = add_key(path, "scoring", ["credit"])
    ops = add_key(path, "ops", ["*"])
    fraud = add_key(path, "fraud-team", ["fraud"])
    return path, scoring, ops, fraud


def test_keys_scopes_and_headers(repo, tmp_path):
    path, scoring, ops, fraud = _keys(tmp_path)
    doc = json.loads(path.read_text())
    assert doc["scoring"] == {"sha256": hash_key(scoring), "models": ["credit"]}
    assert scoring not in path.read_text() and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    rows = credit_frame(2, seed=5).to_numpy().tolist()
    app = create_app(repo, poll_seconds=0, api_keys=str(path))
    with ServerThread(app) as server, requests.Session() as s:
        u = server.url

        def post(url, headers=None, body=None):
            return s.post(
                u + url, json=body or {"model_name": "credit", "input_data": rows}, headers=headers, timeout=TIMEOUT
            )

        for p in ("/v2/health/live", "/v2/health/ready"):
            assert s.get(u + p, timeout=TIMEOUT).status_code == 200
        missing = {"error": "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"}
        for p in (
            "/v2",
            "/metrics",
            "/docs",
            "/openapi.json",
            "/v1/models/credit",
            "/v2/models/credit",
            "/v2/models/credit/ready",
        ):
            r = s.get(u + p, timeout=TIMEOUT)
            assert (r.status_code, r.json()) == (401, missing), p
            assert r.headers["www-authenticate"] == 'Bearer realm="maasfin"'
        r = post("/v1/predict")
        assert (r.status_code, r.json()) == (401, missing)
        r = post("/v1/predict", {"Authorization": "Basic " + scoring})
        assert (r.status_code, r.json()) == (401, missing)
        r = post("/v1/predict", {"Authorization": "Bearer " + scoring + "x"})
        assert (r.status_code, r.json()) == (401, {"error": "invalid API key"})
        r = post("/v1/predict", {"X-API-Key": "mfk_guess"})
        assert (r.status_code, r.json()) == (401, {"error": "invalid API key"})
        assert post("/v1/predict", {"Authorization": "Bearer " + scoring}).status_code == 200
        assert post("/v1/predict", {"authorization": "bearer " + scoring}).status_code == 200
        assert post("/v1/predict", {"X-API-Key": scoring}).status_code == 200
        assert post("/v1/predict", {"X-API-Key": ops}).status_code == 200
        # 403: a valid key outside its models, on every kind of endpoint; also for a model that does not exist
        forbidden = {"error": "API key 'fraud-team' may not use model 'credit'"}
        h = {"X-API-Key": fraud}
        assert (post("/v1/predict", h).status_code, post("/v1/predict", h).json()) == (403, forbidden)
        r = post("/v1/models/credit:predict", h, {"instances": rows})
        assert (r.status_code, r.json()) == (403, forbidden)
        r = post("/v2/models/credit/infer", h, {"inputs": []})
        assert (r.status_code, r.json()) == (403, forbidden)
        for p in ("/v1/models/credit", "/v1/models/credit/metadata", "/v2/models/credit", "/v2/models/credit/ready"):
            r = s.get(u + p, headers=h, timeout=TIMEOUT)
            assert (r.status_code, r.json()) == (403, forbidden), p
        r = post("/v1/predict", {"X-API-Key": scoring}, {"model_name": "secret", "input_data": rows})
        assert (r.status_code, r.json()) == (403, {"error": "API key 'scoring' may not use model 'secret'"})
        assert post("/v1/predict", h, {"model_name": "fraud", "input_data": rows}).status_code == 200
        for p in ("/v2", "/openapi.json", "/docs"):
            assert s.get(u + p, headers={"X-API-Key": scoring}, timeout=TIMEOUT).status_code == 200, p
        r = s.get(u + "/metrics", headers={"X-API-Key": scoring}, timeout=TIMEOUT)  # needs the metrics scope
        assert r.status_code == 403
        doc = s.get(u + "/openapi.json", headers={"X-API-Key": scoring}, timeout=TIMEOUT).json()
        assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
        # tritonclient with a header
        client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
        try:
            inp = triton.InferInput("input_layer", [2, 5], "FP32")
            inp.set_data_from_numpy(np.asarray(rows, dtype=np.float32))
            res = client.infer("credit", [inp], headers={"Authorization": "Bearer " + scoring})
            assert res.as_numpy("pd").shape == (2, 1)
            assert client.is_server_live()  # no key needed
        finally:
            client.close()
        # a key added to the file works after the next poll, without a restart
        late = add_key(path, "late", ["credit"])
        assert post("/v1/predict", {"X-API-Key": late}).status_code == 401
        app.state.maasfin.poll()
        assert post("/v1/predict", {"X-API-Key": late}).status_code == 200
        # a broken file on reload keeps the keys in force
        path.write_text("{broken")
        app.state.maasfin.poll()
        assert post("/v1/predict", {"X-API-Key": late}).status_code == 200


def test_public_docs_option(repo, tmp_path):
    path, scoring, _, _ = _keys(tmp_path)
    app = create_app(repo, poll_seconds=0, api_keys=str(path), public_docs=True)
    with ServerThread(app) as server:
        assert requests.get(server.url + "/openapi.json", timeout=TIMEOUT).status_code == 200
        assert requests.get(server.url + "/docs", timeout=TIMEOUT).status_code == 200
        assert requests.get(server.url + "/metrics", timeout=TIMEOUT).status_code == 401


def test_keys_command_line(tmp_path):
    path = tmp_path / "k.json"
    out = subprocess.run(
        [sys.executable, "-m", "maasfin", "keys", "add", str(path), "scoring", "--models", "credit,fraud"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    key = out.stdout.strip()
    assert key.startswith("mfk_") and len(key) > 40
    assert "cannot be shown again" in out.stderr
    assert json.loads(path.read_text()) == {"scoring": {"sha256": hash_key(key), "models": ["credit", "fraud"]}}
    out = subprocess.run(
        [sys.executable, "-m", "maasfin", "keys", "list", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout == "scoring\tcredit,fraud\n"
    bad = subprocess.run(
        [sys.executable, "-m", "maasfin", "serve", str(tmp_path), "--api-keys", str(tmp_path / "missing.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        f"maasfin serve: cannot read the API keys file '{tmp_path / 'missing.json'}': No such file or directory"
    )


def test_request_timeout_is_504_and_audited(repo, tmp_path, monkeypatch):
    real = serving_service.predict_tiled

    def slow(model, xs, tile):
        time.sleep(0.6)
        return real(model, xs, tile)

    monkeypatch.setattr(serving_service, "predict_tiled", slow)
    audit = tmp_path / "audit.jsonl"
    app = create_app(repo, poll_seconds=0, request_timeout_s=0.2, audit_log=str(audit))
    rows = credit_frame(1, seed=6).to_numpy().tolist()
    with ServerThread(app) as server:
        t0 = time.monotonic()
        r = requests.post(
            server.url + "/v1/predict", json={"model_name": "credit", "input_data": rows}, timeout=TIMEOUT
        )
        assert time.monotonic() - t0 < 0.55
        assert (r.status_code, r.json()) == (
            504,
            {"error": "the request did not complete within the server's timeout of 0.2 s"},
        )
        monkeypatch.setattr(serving_service, "predict_tiled", real)
        time.sleep(0.5)  # the slow predict finishes in the background; the server carries on
        assert (
            requests.post(
                server.url + "/v1/predict", json={"model_name": "credit", "input_data": rows}, timeout=TIMEOUT
            ).status_code
            == 200
        )
    lines = [json.loads(x) for x in audit.read_text().splitlines()]
    assert [x["status"] for x in lines] == [504, 200]
    assert lines[0]["error"] == "the request did not complete within the server's timeout of 0.2 s"


AUDIT_KEYS = [
    "time",
    "request_id",
    "key",
    "client",
    "method",
    "path",
    "protocol",
    "model",
    "version",
    "label",
    "rows",
    "input_sha256",
    "body_sha256",
    "outputs_sha256",
    "status",
    "latency_ms",
    "error",
]


def test_audit_log_one_line_per_request_with_rotation(repo, tmp_path):
    path, scoring, ops, fraud = _keys(tmp_path)
    audit = tmp_path / "audit" / "audit.jsonl"
    app = create_app(
        repo,
        poll_seconds=0,
        api_keys=str(path),
        audit_log=str(audit),
        audit_max_bytes=64 * 1024,
        audit_backups=100,
        max_body_bytes=16 * 1024,
        audit_refused_burst=1000,  # every refused request's line too (the rate limit: test_serving_audit_all.py)
    )
    df = credit_frame(64, seed=7)
    x = df.to_numpy()
    head = json.dumps(
        {
            "inputs": [
                {"name": "input_layer", "shape": [2, 5], "datatype": "FP32", "parameters": {"binary_data_size": 40}}
            ]
        }
    ).encode()

    def request(s, u, k, i):
        """The k-th kind of request, on row i: (response, rows sent or None)."""
        rows = x[i : i + 2]
        good = {"X-API-Key": scoring}
        if k == 0:
            return s.post(
                u + "/v1/predict",
                json={"model_name": "credit", "input_data": rows.tolist()},
                headers=good,
                timeout=TIMEOUT,
            ), rows
        if k == 1:
            return s.post(
                u + "/v1/models/credit:predict",
                json={"instances": rows.tolist()},
                headers={"Authorization": "Bearer " + ops},
                timeout=TIMEOUT,
            ), rows
        if k == 2:
            return s.post(
                u + "/v2/models/credit/infer",
                data=head + rows.astype("<f4").tobytes(),
                headers={**good, "Inference-Header-Content-Length": str(len(head))},
                timeout=TIMEOUT,
            ), rows
        if k == 3:
            return s.post(u + "/v1/predict", data=b"{not json", headers=good, timeout=TIMEOUT), None
        if k == 4:
            return s.post(
                u + "/v1/predict",
                data=b'{"model_name":"credit","input_data":[[NaN,1,2,3,4]]}',
                headers=good,
                timeout=TIMEOUT,
            ), None
        if k == 5:
            return s.post(
                u + "/v1/predict", json={"model_name": "credit", "input_data": rows.tolist()}, timeout=TIMEOUT
            ), None
        if k == 6:
            return s.post(
                u + "/v1/predict",
                json={"model_name": "credit", "input_data": rows.tolist()},
                headers={"X-API-Key": fraud},
                timeout=TIMEOUT,
            ), None
        if k == 7:
            return s.post(
                u + "/v1/predict",
                json={"model_name": "credit", "input_data": [[0.5] * 5] * 2000},
                headers=good,
                timeout=TIMEOUT,
            ), None
        if k == 8:
            return s.post(
                u + "/v1/models/nope:predict",
                json={"instances": rows.tolist()},
                headers={"X-API-Key": ops},
                timeout=TIMEOUT,
            ), None
        return s.post(
            u + "/v2/models/credit/infer",
            json={"inputs": [{"name": "input_layer", "shape": [2, 4], "datatype": "FP32", "data": [0] * 8}]},
            headers=good,
            timeout=TIMEOUT,
        ), None

    responses = {}
    lock = threading.Lock()
    with ServerThread(app) as server:

        def client(t):
            with requests.Session() as s:
                for j in range(125):
                    n = t * 125 + j
                    r, rows = request(s, server.url, n % 10, n % 60)
                    with lock:
                        responses[r.headers["x-request-id"]] = (r.status_code, n % 10, rows, r)

        threads = [threading.Thread(target=client, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads)
    assert len(responses) == 1000
    statuses = sorted({(k, st) for st, k, _, _ in responses.values()})
    assert statuses == [
        (0, 200),
        (1, 200),
        (2, 200),
        (3, 400),
        (4, 400),
        (5, 401),
        (6, 403),
        (7, 413),
        (8, 404),
        (9, 400),
    ]
    files = sorted(glob.glob(str(audit) + "*"))
    assert len(files) > 3  # rotated by size
    lines = []
    for f in files:
        with open(f, "rb") as fh:
            data = fh.read()
        assert data.endswith(b"\n") and os.path.getsize(f) <= 64 * 1024
        text = data.decode()
        for secret in (scoring, ops, fraud):
            assert secret not in text
        lines += [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 1000
    assert {rec["request_id"] for rec in lines} == set(responses)
    for rec in lines:
        assert list(rec) == AUDIT_KEYS
        status, kind, rows, r = responses[rec["request_id"]]
        assert rec["status"] == status and rec["method"] == "POST" and rec["latency_ms"] >= 0
        assert (
            rec["key"]
            == {
                0: "scoring",
                1: "ops",
                2: "scoring",
                3: "scoring",
                4: "scoring",
                5: None,
                6: "fraud-team",
                7: "scoring",
                8: "ops",
                9: "scoring",
            }[kind]
        )
        if status == 200:
            assert rec["error"] is None and rec["model"] == "credit" and rec["version"] == 1 and rec["rows"] == 2
            assert rec["input_sha256"] == input_digest([rows.astype(np.float32)], ["input_layer"])
            assert len(rec["outputs_sha256"]) == 64 and len(rec["body_sha256"]) == 64
        else:
            assert rec["error"] == r.json()["error"] and rec["input_sha256"] is None and rec["outputs_sha256"] is None
    by_kind = {k: [rec for rec in lines if responses[rec["request_id"]][1] == k] for k in range(10)}
    assert {rec["protocol"] for rec in by_kind[2]} == {"v2"} and {rec["protocol"] for rec in by_kind[1]} == {
        "tfserving"
    }
    # identical rows give identical hashes whichever protocol carried them
    h0 = {rec["input_sha256"]: rec["outputs_sha256"] for rec in by_kind[0]}
    for rec in by_kind[2]:
        if rec["input_sha256"] in h0:
            assert h0[rec["input_sha256"]] == rec["outputs_sha256"]


def test_audit_outputs_values_and_fsync(repo, tmp_path):
    audit = tmp_path / "a.jsonl"
    app = create_app(repo, poll_seconds=0, audit_log=str(audit), audit_outputs="values", audit_fsync=True)
    x = credit_frame(3, seed=8).to_numpy()
    with ServerThread(app) as server:
        r = requests.post(
            server.url + "/v1/predict", json={"model_name": "credit", "input_data": x.tolist()}, timeout=TIMEOUT
        )
    rec = json.loads(audit.read_text())
    assert "outputs_sha256" not in rec and rec["outputs"] == r.json()["predictions"]
