"""Every request that reaches a route has exactly one audit line (read routes, refused and failed
requests included) on both front ends, and refused requests' lines are rate-limited per identity."""

import json

import pytest
import requests
from flask import Flask
from serving_support import FlaskThread, ServerThread, credit_model, put
from test_serving_security import AUDIT_KEYS

from maasfin.serving import add_key, create_app, flask_blueprint
from maasfin.serving.config import ServingConfig
from maasfin.serving.refusals import RefusalLimiter

TIMEOUT = 20
ROW = [0.5, 0.2, 0.1, 0.3, 0.0]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    put(repo, "credit", 1, credit_model(seed=1))
    return repo


class Front:
    def __init__(self, kind, repo, tmp_path, **options):
        keys_path = tmp_path / "keys.json"
        self.keys = {
            "scoring": add_key(keys_path, "scoring", ["credit"]),
            "prometheus": add_key(keys_path, "prometheus", [], scopes=["metrics"]),
        }
        self.audit = tmp_path / "audit.jsonl"
        options = dict(poll_seconds=0, api_keys=str(keys_path), audit_log=str(self.audit), **options)
        if kind == "asgi":
            app = create_app(repo, **options)
            self.service, self.runner, self.prefix = app.state.maasfin, ServerThread(app), ""
        else:
            bp = flask_blueprint(repo, **options)
            app = Flask("audit_all")
            app.register_blueprint(bp, url_prefix="/ml")
            self.service, self.runner, self.prefix = bp.maasfin, FlaskThread(app), "/ml"

    def __enter__(self):
        self.url = self.runner.__enter__().url + self.prefix
        return self

    def __exit__(self, *exc):
        self.runner.__exit__(*exc)
        self.service.stop()  # the Flask blueprint's service is stopped by its owner; stop() is idempotent

    def lines(self):
        return [json.loads(x) for x in self.audit.read_text().splitlines()]


def _requests(keys):
    """(method, path, key, expected status) covering every kind of route, served, refused and failed."""
    s, p = keys["scoring"], keys["prometheus"]
    body = {"model_name": "credit", "input_data": [ROW]}
    return [
        ("GET", "/v1/models/credit", s, 200, None),
        ("GET", "/v1/models/credit/versions/1", s, 200, None),
        ("GET", "/v1/models/credit/metadata", s, 200, None),
        ("GET", "/v1/models/credit/versions/7/metadata", s, 404, None),
        ("GET", "/v1/models/credit/labels/stable/metadata", s, 404, None),
        ("GET", "/v1/models/credit/drift", s, 200, None),
        ("GET", "/v1/models/other/drift", s, 403, None),
        ("GET", "/v1/models/credit/versions/1/drift", None, 401, None),
        ("GET", "/v2", s, 200, None),
        ("GET", "/v2/health/live", None, 200, None),
        ("GET", "/v2/health/ready", None, 200, None),
        ("GET", "/v2/models/credit", s, 200, None),
        ("GET", "/v2/models/credit/versions/1", "mfk_wrong", 401, None),
        ("GET", "/v2/models/credit/ready", s, 200, None),
        ("GET", "/v2/models/credit/versions/\u0661/ready", s, 400, None),
        ("GET", "/metrics", p, 200, None),
        ("GET", "/metrics", s, 403, None),
        ("GET", "/metrics", None, 401, None),
        ("POST", "/v1/predict", s, 200, body),
        ("POST", "/v1/predict", p, 403, body),
        ("POST", "/v2/models/credit/infer", s, 400, {"inputs": []}),
    ]


@pytest.mark.parametrize("kind", ["asgi", "flask"])
def test_every_request_that_reaches_a_route_has_one_complete_line(kind, repo, tmp_path):
    with Front(kind, repo, tmp_path) as front, requests.Session() as session:
        sent = {}
        cases = _requests(front.keys)
        if kind == "asgi":  # maasfin serve's OpenAPI document is a route too
            cases += [("GET", "/openapi.json", front.keys["scoring"], 200, None), ("GET", "/docs", None, 401, None)]
        for method, path, key, status, body in cases:
            headers = {"X-API-Key": key} if key else {}
            r = session.request(method, front.url + path, json=body, headers=headers, timeout=TIMEOUT)
            assert r.status_code == status, (path, r.text[:300])
            if status >= 400:
                assert r.headers["content-type"].startswith("application/json") and "error" in r.json()
            sent[r.headers["X-Request-ID"]] = (method, path, key, r)
    lines = [x for x in front.lines() if "event" not in x]
    assert len(lines) == len(sent)
    assert {x["request_id"] for x in lines} == set(sent)
    names = {v: k for k, v in front.keys.items()}
    for rec in lines:
        method, path, key, r = sent[rec["request_id"]]
        assert list(rec) == AUDIT_KEYS
        assert (rec["method"], rec["path"], rec["status"]) == (method, front.prefix + path, r.status_code)
        assert rec["key"] == names.get(key) and rec["client"] == "127.0.0.1" and rec["latency_ms"] >= 0
        assert rec["error"] == (r.json()["error"] if r.status_code >= 400 else None)
        if path.startswith(("/v1/models/credit", "/v2/models/credit")):
            assert rec["model"] == "credit"
        if "/versions/1" in path:
            assert rec["version"] == 1
        operations = "drift" in path or path in ("/metrics", "/openapi.json", "/docs")
        expected = "operations" if operations else "v2" if path[:3] == "/v2" else None
        if expected is not None:
            assert rec["protocol"] == expected


@pytest.mark.parametrize("kind", ["asgi", "flask"])
def test_refused_lines_are_rate_limited_per_identity(kind, repo, tmp_path):
    options = dict(audit_refused_rate=0.001, audit_refused_burst=5, audit_summary_seconds=3600)
    with Front(kind, repo, tmp_path, **options) as front, requests.Session() as session:
        body = {"model_name": "fraud", "input_data": [ROW]}
        ids = []
        for _ in range(20):
            r = session.post(front.url + "/v1/predict", json=body, headers={"X-API-Key": front.keys["scoring"]})
            assert r.status_code == 403
            r = session.get(front.url + "/v1/models/credit", timeout=TIMEOUT)  # no key: per client address
            assert r.status_code == 401
        for _ in range(3):  # served requests are never limited
            r = session.post(
                front.url + "/v1/predict",
                json={"model_name": "credit", "input_data": [ROW]},
                headers={"X-API-Key": front.keys["scoring"]},
                timeout=TIMEOUT,
            )
            assert r.status_code == 200
            ids.append(r.headers["X-Request-ID"])
    lines = front.lines()
    refused = [x for x in lines if "event" not in x and x["status"] >= 400]
    assert sorted(x["status"] for x in refused) == [401] * 5 + [403] * 5
    assert [x["request_id"] for x in lines if x.get("status") == 200] == ids
    summaries = sorted((x for x in lines if x.get("event") == "audit_dropped"), key=lambda x: str(x["key"]))
    assert [(x["key"], x["client"], x["dropped"]) for x in summaries] == [
        (None, "127.0.0.1", 15),
        ("scoring", None, 15),
    ]
    assert all(x["first_dropped"] <= x["last_dropped"] for x in summaries)


def test_refusal_limiter_token_bucket():
    lim = RefusalLimiter(rate=2.0, burst=3, summary_seconds=10.0, max_identities=2)
    assert [lim.admit("a", None, now=0.0)[0] for _ in range(5)] == [True, True, True, False, False]
    assert lim.admit("a", None, now=0.4) == (False, [])  # 0.8 tokens refilled: not yet one
    ok, summaries = lim.admit("a", None, now=0.6)  # 1.2 tokens: admitted; its last summary is too recent
    assert ok and summaries == []
    ok, summaries = lim.admit("a", None, now=10.5)  # admitted, and the summary of its 3 drops comes first
    assert ok and [(s["key"], s["dropped"]) for s in summaries] == [("a", 3)]
    for _ in range(4):
        lim.admit(None, "10.0.0.1", now=11.0)
    assert lim.admit(None, "10.0.0.1", now=11.0)[0] is False
    _, summaries = lim.admit(None, "10.0.0.2", now=11.0)  # a third identity evicts the least recent ("a")
    assert summaries == []
    _, summaries = lim.admit(None, "10.0.0.3", now=11.0)  # evicts 10.0.0.1, with its 2 drops
    assert [(s["client"], s["dropped"]) for s in summaries] == [("10.0.0.1", 2)]
    assert lim.drain() == []
    with pytest.raises(ValueError, match="audit_refused_rate"):
        RefusalLimiter(rate=0)
    with pytest.raises(ValueError, match="audit_refused_burst"):
        ServingConfig(repo=".", audit_refused_burst=0)
    with pytest.raises(ValueError, match="audit_refused_rate"):
        ServingConfig(repo=".", audit_refused_rate=float("nan"))
