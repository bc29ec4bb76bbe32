"""GET /v1/models/{name}/drift, the maasfin_drift_psi gauges and the drift_band audit lines, on a
real server fed live traffic."""

import json
import re

import numpy as np
import pytest
import requests
from serving_support import FEATURES, ServerThread, credit_frame, credit_model, plain_model, put

from maasfin.serving import create_app

GAUGE = re.compile(r"^maasfin_drift_psi\{(?P<labels>[^}]*)\} (?P<value>\S+)$", re.M)


def _gauges(url, model="credit", version="1"):
    text = requests.get(url + "/metrics", timeout=30).text
    out = {}
    for m in GAUGE.finditer(text):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group("labels")))
        if labels["model"] == model and labels["version"] == version:
            out[labels["feature"]] = float(m.group("value"))
    return out


def _audit_drift_lines(path):
    with open(path) as f:
        return [r for r in map(json.loads, f) if r.get("event") == "drift_band"]


def _send(url, df, chunk=250):
    for i in range(0, len(df), chunk):
        r = requests.post(
            url + "/v1/predict",
            timeout=30,
            json={"model_name": "credit", "input_data": df.iloc[i : i + chunk].values.tolist()},
        )
        assert r.status_code == 200, r.text


@pytest.fixture()
def server(tmp_path):
    repo = tmp_path / "repo"
    put(str(repo), "credit", 1, credit_model(seed=3, epochs=2))
    put(str(repo), "plain", 1, plain_model(seed=1))  # built, never fit: no drift reference
    audit = tmp_path / "audit.jsonl"
    with ServerThread(create_app(str(repo), poll_seconds=0, audit_log=str(audit), drift_window=2000)) as s:
        yield s, audit


def test_drift_report_stable_then_shifted_feature_acts(server):
    s, audit = server
    empty = requests.get(s.url + "/v1/models/credit/drift", timeout=30)
    assert empty.status_code == 200, empty.text
    body = empty.json()
    assert body["window"] == {"rows": 0, "capacity": 2000} and body["reference"] is True
    assert [f["feature"] for f in body["features"]] == FEATURES
    assert all(f["psi"] is None and f["band"] is None for f in body["features"])
    assert body["score"] == {"psi": None, "band": None}
    assert _gauges(s.url) == {}

    # Traffic drawn from the training distribution (credit_model trains on N(0, 1) features).
    _send(s.url, credit_frame(2000, seed=42))
    gauges = _gauges(s.url)  # a scrape evaluates drift
    report = requests.get(s.url + "/v1/models/credit/versions/1/drift", timeout=30).json()
    assert report["window"]["rows"] == 2000 and report["model_version"] == 1
    for f in report["features"] + [dict(report["score"], feature="score")]:
        assert f["band"] == "stable", f
        assert gauges[f["feature"]] == pytest.approx(f["psi"], rel=1e-12, abs=1e-15)
    lines = _audit_drift_lines(audit)
    assert {(r["feature"], r["from"], r["to"]) for r in lines} == {(f, None, "stable") for f in FEATURES + ["score"]}

    # Shift one feature by 3 standard deviations: it (and the score) drift.
    shifted = credit_frame(2000, seed=43)
    shifted["income"] += 3.0
    _send(s.url, shifted)
    gauges = _gauges(s.url)
    report = requests.get(s.url + "/v1/models/credit/drift", timeout=30).json()
    bands = {f["feature"]: f["band"] for f in report["features"]}
    assert bands["income"] == "act" and report["score"]["band"] == "act"
    assert all(bands[f] == "stable" for f in FEATURES if f != "income")
    for f in report["features"] + [dict(report["score"], feature="score")]:
        assert gauges[f["feature"]] == pytest.approx(f["psi"], rel=1e-12, abs=1e-15)
    changes = _audit_drift_lines(audit)[len(lines) :]
    assert {(r["feature"], r["from"], r["to"]) for r in changes} == {
        ("income", "stable", "act"),
        ("score", "stable", "act"),
    }
    for r in changes:
        assert r["model"] == "credit" and r["version"] == 1 and r["window_rows"] == 2000 and r["psi"] > 0.25
    # No change, no new line.
    _gauges(s.url)
    assert len(_audit_drift_lines(audit)) == len(lines) + 2


def test_model_without_reference_has_null_psi_and_unknown_model_is_404(server):
    s, _ = server
    r = requests.post(s.url + "/v1/predict", json={"model_name": "plain", "input_data": [[0.1, 0.2, 0.3]]}, timeout=30)
    assert r.status_code == 200, r.text
    body = requests.get(s.url + "/v1/models/plain/drift", timeout=30).json()
    assert body["reference"] is False and body["score"]["psi"] is None
    assert len(body["features"]) == 3 and all(f["psi"] is None for f in body["features"])
    for path in ("/v1/models/nope/drift", "/v1/models/credit/versions/7/drift"):
        r = requests.get(s.url + path, timeout=30)
        assert r.status_code == 404, (path, r.text)
    assert requests.get(s.url + "/v1/models/credit/versions/x1/drift", timeout=30).status_code == 400


def test_drift_window_is_bounded_and_can_be_disabled(tmp_path):
    repo = tmp_path / "repo"
    put(str(repo), "credit", 1, credit_model(seed=3))
    with ServerThread(create_app(str(repo), poll_seconds=0, drift_window=100)) as s:
        _send(s.url, credit_frame(330, seed=1), chunk=70)
        assert requests.get(s.url + "/v1/models/credit/drift", timeout=30).json()["window"]["rows"] == 100
    with ServerThread(create_app(str(repo), poll_seconds=0, drift_window=0)) as s:
        _send(s.url, credit_frame(50, seed=1))
        body = requests.get(s.url + "/v1/models/credit/drift", timeout=30).json()
        assert body["window"] == {"rows": 0, "capacity": 0} and body["score"]["psi"] is None
        assert _gauges(s.url) == {}


def test_drift_window_keeps_the_most_recent_rows():
    from maasfin.serving.drift import DriftWindow

    w = DriftWindow(5, 2)
    for k in range(4):
        x = np.full((3, 2), k, np.float32)
        w.append(x, x[:, 0])
    x, s = w.snapshot()
    assert len(w) == 5 and x.shape == (5, 2)
    np.testing.assert_array_equal(s, [2, 2, 3, 3, 3])
    w.append(np.arange(20, dtype=np.float32).reshape(10, 2), np.arange(10, dtype=np.float32))
    np.testing.assert_array_equal(w.snapshot()[1], [5, 6, 7, 8, 9])


def test_drift_endpoint_needs_a_key(tmp_path):
    from maasfin.serving import auth

    repo = tmp_path / "repo"
    put(str(repo), "credit", 1, credit_model(seed=3))
    keys = tmp_path / "keys.json"
    key = auth.add_key(str(keys), "ops", ["credit"])
    with ServerThread(create_app(str(repo), poll_seconds=0, api_keys=str(keys))) as s:
        assert requests.get(s.url + "/v1/models/credit/drift", timeout=30).status_code == 401
        r = requests.get(s.url + "/v1/models/credit/drift", headers={"X-API-Key": key}, timeout=30)
        assert r.status_code == 200, r.text


def test_flask_blueprint_serves_the_same_drift_report(tmp_path):
    flask = pytest.importorskip("flask")
    from maasfin.serving import flask_blueprint

    repo = tmp_path / "repo"
    put(str(repo), "credit", 1, credit_model(seed=3))
    app = flask.Flask("drift")
    bp = flask_blueprint(str(repo), poll_seconds=0, drift_window=500)
    app.register_blueprint(bp)
    client = app.test_client()
    try:
        records = credit_frame(40, seed=2).values.tolist()
        assert client.post("/v1/predict", json={"model_name": "credit", "input_data": records}).status_code == 200
        body = client.get("/v1/models/credit/versions/1/drift").get_json()
        assert body["window"] == {"rows": 40, "capacity": 500}
        assert body["score"]["psi"] is not None and body["score"]["band"] in ("stable", "watch", "act")
        assert client.get("/v1/models/nope/drift").status_code == 404
    finally:
        bp.maasfin.stop()


def test_shared_drift_windows_merge_the_most_recent_rows_of_every_worker(tmp_path, monkeypatch):
    """Two workers' windows (files in one directory) seen from either: the most recent `capacity`
    rows of both, by arrival time; a file removed (version unloaded) drops out."""
    from maasfin.serving import drift

    clock = iter(range(100, 200))
    monkeypatch.setattr(drift.time, "time", lambda: float(next(clock)))
    monkeypatch.setattr(drift.os, "getpid", lambda: 1)
    a = drift.SharedDriftWindow(str(tmp_path), 6, 2)
    monkeypatch.setattr(drift.os, "getpid", lambda: 2)
    b = drift.SharedDriftWindow(str(tmp_path), 6, 2)
    assert a.path != b.path and len(a) == 0 and a.snapshot()[0].shape == (0, 2)

    def rows(*values):
        v = np.array(values, np.float32)
        return np.stack([v, -v], axis=1), v

    a.append(*rows(1, 2))  # t=100
    b.append(*rows(3))  # t=101
    a.append(*rows(4, 5, 6))  # t=102
    b.append(*rows(7, 8))  # t=103
    for w in (a, b):
        x, s = w.snapshot()
        np.testing.assert_array_equal(s, [3, 4, 5, 6, 7, 8])  # row 2's time is the oldest of the last six
        np.testing.assert_array_equal(x[:, 1], -s)
    a.append(*rows(*range(10, 19)))  # t=104: more than the capacity; a keeps its last six, wrapping its ring
    np.testing.assert_array_equal(b.snapshot()[1], [13, 14, 15, 16, 17, 18])
    b.append(*rows(20))  # t=105
    np.testing.assert_array_equal(a.snapshot()[1], [14, 15, 16, 17, 18, 20])
    a.close()
    np.testing.assert_array_equal(b.snapshot()[1], [3, 7, 8, 20])
    assert len(b) == 4
