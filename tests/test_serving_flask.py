"""The Flask blueprint inside an existing Flask app, on a threaded Werkzeug server on loopback,
under 16 concurrent clients; its answers match the ASGI server's, byte for byte."""
import json
import threading

import numpy as np
import requests
from flask import Flask
from werkzeug.serving import make_server

import maasfin as mf
from maasfin.serving import add_key, create_app, flask_blueprint

from serving_support import FEATURES, ServerThread, credit_frame, credit_model, put, put_labels, run_threads

TIMEOUT = 10


class FlaskThread:
    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(30)


def _f32(x):
    return np.asarray(x, dtype=np.float64).astype(np.float32)


def test_flask_blueprint_under_concurrent_clients(tmp_path):
    repo = tmp_path / "repo"
    put(repo, "credit", 1, credit_model(seed=81))
    put(repo, "credit", 2, credit_model(seed=82))
    put_labels(repo, "credit", {"stable": 1})
    keys = tmp_path / "keys.json"
    key = add_key(keys, "web", ["credit"])
    other = add_key(keys, "other", ["fraud"])
    audit = tmp_path / "audit.jsonl"
    df = credit_frame(64, seed=300)
    expected = {v: mf.models.load_model(repo / f"credit/{v}/model.maas", compile=False).predict(df) for v in (1, 2)}
    records = df.to_dict(orient="records")

    app = Flask("existing_app")

    @app.get("/hello")
    def hello():  # the host app's own routes keep working
        return "hello"

    bp = flask_blueprint(str(repo), api_keys=str(keys), audit_log=str(audit), poll_seconds=0,
                         max_body_bytes=64 * 1024)
    app.register_blueprint(bp, url_prefix="/ml")
    h = {"Authorization": "Bearer " + key}
    with FlaskThread(app) as server:
        u = server.url + "/ml"
        assert requests.get(server.url + "/hello", timeout=TIMEOUT).text == "hello"
        sent = []

        def client(i):
            with requests.Session() as s:
                for k in range(20):
                    row = (i * 20 + k) % 64
                    if k % 3 == 0:
                        r = s.post(u + "/v1/predict", json={"model_name": "credit", "input_data": records[row]},
                                   headers=h, timeout=TIMEOUT)
                        version, preds = r.json()["model_version"], r.json()["predictions"]
                    elif k % 3 == 1:
                        r = s.post(u + "/v1/models/credit/labels/stable:predict", json={"instances": [records[row]]},
                                   headers=h, timeout=TIMEOUT)
                        version, preds = 1, r.json()["predictions"]
                    else:
                        r = s.post(u + "/v1/models/credit/versions/2:predict",
                                   json={"inputs": [df.iloc[row].tolist()]}, headers=h, timeout=TIMEOUT)
                        version, preds = 2, r.json()["outputs"]
                    assert r.status_code == 200, r.text
                    assert np.array_equal(_f32(preds), expected[version][row:row + 1]), (i, k)
                    sent.append(r.headers["X-Request-ID"])

        run_threads(16, client)
        assert len(sent) == 320
        with requests.Session() as s:
            r = s.get(u + "/v1/models/credit", headers=h, timeout=TIMEOUT)
            assert [v["version"] for v in r.json()["model_version_status"]] == ["2", "1"]
            meta = s.get(u + "/v1/models/credit/metadata", headers=h, timeout=TIMEOUT).json()
            assert meta["maasfin"]["feature_names"] == FEATURES
            bad = [
                (s.post(u + "/v1/predict", json={"model_name": "credit", "input_data": records[0]}, timeout=TIMEOUT),
                 401, "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"),
                (s.post(u + "/v1/predict", json={"model_name": "credit", "input_data": records[0]},
                        headers={"X-API-Key": other}, timeout=TIMEOUT),
                 403, "API key 'other' may not use model 'credit'"),
                (s.post(u + "/v1/predict", data=b'{"model_name": "credit", "input_data": [[NaN, 0, 0, 0, 0]]}',
                        headers=h, timeout=TIMEOUT),
                 400, "input_data[0][0] is NaN: NaN and infinity are not allowed (JSON has no such numbers); impute "
                      "or drop missing values before sending them"),
                (s.post(u + "/v1/predict", json={"model_name": "credit", "input_data": {"income": 1}}, headers=h,
                        timeout=TIMEOUT),
                 400, "input_data is missing feature(s) ['debt_ratio', 'age', 'utilisation', 'late_payments']; the "
                      "model's features are ['income', 'debt_ratio', 'age', 'utilisation', 'late_payments']"),
                (s.post(u + "/v1/predict", json={"model_name": "credit", "input_data": [[1.0] * 5] * 5000},
                        headers=h, timeout=TIMEOUT),
                 413, "the request body is larger than the limit of 65536 bytes"),
                (s.post(u + "/v1/models/credit/versions/9:predict", json={"instances": [[0] * 5]}, headers=h,
                        timeout=TIMEOUT),
                 404, "model 'credit' has no available version 9; available versions: [1, 2]"),
            ]
            for r, status, message in bad:
                assert (r.status_code, r.json()) == (status, {"error": message})
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert len(lines) == 320 + 6
    assert {x["request_id"] for x in lines[:320]} == set(sent)
    assert {x["key"] for x in lines[:320]} == {"web"}
    assert [x["status"] for x in lines[-6:]] == [401, 403, 400, 400, 413, 404]

    # the ASGI server answers the same bytes
    asgi = create_app(repo, poll_seconds=0)
    body = json.dumps({"model_name": "credit", "input_data": records[:40]})
    app2 = Flask("no_auth")
    app2.register_blueprint(flask_blueprint(repo, poll_seconds=0))
    with ServerThread(asgi) as s1, FlaskThread(app2) as s2:
        for path, payload in [("/v1/predict", body),
                              ("/v1/models/credit:predict", json.dumps({"instances": df.to_numpy().tolist()})),
                              ("/v1/predict", '{"model_name": "credit", "input_data": [[1, 2]]}')]:
            a = requests.post(s1.url + path, data=payload, timeout=TIMEOUT)
            b = requests.post(s2.url + path, data=payload, timeout=TIMEOUT)
            assert (a.status_code, a.content) == (b.status_code, b.content)
