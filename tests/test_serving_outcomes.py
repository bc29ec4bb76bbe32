"""Outcomes and realised performance (maasfin.serving.outcomes): request ids on responses, POST
/v1/outcomes joined to stored predictions, GET .../performance against scikit-learn, bad input,
degraded mode, and a replay of the bundled credit data through `maasfin serve --workers 2` across
a restart, on SQLite and on a real PostgreSQL server."""

import json
import os

import numpy as np
import pytest
import requests
from flask import Flask
from outcomes_support import Postgres, credit_pd_model, credit_rows, outcomes_body, replay, wait_for
from serving_support import put, put_labels
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve
from test_serving_cli import Serve

from maasfin.serving import ServingConfig, flask_blueprint, input_digest
from maasfin.serving.errors import RequestError
from maasfin.serving.exchange import Exchange
from maasfin.serving.outcomes import api, performance
from maasfin.serving.outcomes.store import OutcomeStore
from maasfin.serving.protocols import simple
from maasfin.serving.service import Service

N = 5000


@pytest.fixture(scope="module")
def credit_repo(tmp_path_factory):
    x, y = credit_rows(N)
    root = tmp_path_factory.mktemp("repo")
    put(root, "credit", 1, credit_pd_model(x, y, seed=3))
    put(root, "credit", 2, credit_pd_model(x, y, seed=4))
    put_labels(root, "credit", {"routing": {"split": {"1": 60, "2": 40}}})
    return root, x, y


def _sklearn(scores, y) -> dict:
    fpr, tpr, _ = roc_curve(y, scores)
    return {
        "roc_auc": roc_auc_score(y, scores),
        "ks": float(np.max(np.abs(tpr - fpr))),
        "brier": brier_score_loss(y, scores),
    }


def _check(perf: dict, scores, y) -> None:
    ref = _sklearn(scores, y)
    assert perf["n"] == len(y)
    for k, v in ref.items():
        assert abs(perf[k] - v) <= 1e-12, (k, perf[k], v)
    assert abs(perf["gini"] - (2 * ref["roc_auc"] - 1)) <= 1e-12
    assert perf["observed_default_rate"] == pytest.approx(np.mean(y), abs=1e-12)
    assert perf["mean_pd"] == pytest.approx(np.mean(scores), abs=1e-12)


def test_performance_metrics_match_references():
    rng = np.random.default_rng(7)
    s = np.round(rng.random(3000), 2)  # ties
    y = (rng.random(3000) < s).astype(int)
    p = performance(s, y)
    _check(p, s, y)
    # ECE over ten equal-width bins, by its definition
    bins = np.minimum((s * 10).astype(int), 9)
    ece = sum(
        (bins == b).mean() * abs(y[bins == b].mean() - s[bins == b].mean()) for b in range(10) if (bins == b).any()
    )
    assert p["ece"] == pytest.approx(ece, abs=1e-12)
    assert performance([0.2, 0.3], [0, 0])["roc_auc"] is None and performance([], [])["n"] == 0
    for bad, message in (
        ({"store": "mysql://db"}, "--store 'mysql://db'"),
        ({"store": "x.db", "store_retention_days": 0}, "store_retention_days"),
        ({"store": "x.db", "store_inputs": "values"}, "store_inputs"),
    ):
        with pytest.raises(ValueError, match=message):
            ServingConfig(repo=".", **bad)


def _call(service, body):
    ex = Exchange("simple", "POST", "/v1/predict", None)
    plan = simple.plan(service, ex, json.dumps(body).encode(), {}, {})
    try:
        reply = service.reply(plan, service.predict(plan))
    finally:
        plan.lease.release()
    service.finish(ex, reply.status)
    return json.loads(reply.body)


def _post(service, obj):
    body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return json.loads(api.post_outcomes(service, None, {"body": body}).body)


def _perf(service, query=None, version=None):
    params = {"name": "credit", "query": query or {}, "body": b""}
    if version is not None:
        params["version"] = str(version)
    return json.loads(api.get_performance(service, None, params).body)


def test_outcomes_in_process_bad_input_and_degraded_mode(credit_repo, tmp_path):
    root, x, y = credit_repo
    rows = x.to_numpy()[:40].tolist()
    store = tmp_path / "down" / "outcomes.db"  # its directory does not exist yet: the store is down
    service = Service(ServingConfig(repo=str(root), poll_seconds=0, store=str(store)))
    service.start(set_threads=False)
    try:
        answer = _call(service, {"model_name": "credit", "input_data": rows[:4]})  # served regardless
        assert len(answer["predictions"]) == 4
        with pytest.raises(RequestError) as info:
            _post(service, {"outcomes": [{"request_id": answer["request_id"], "row": 0, "label": 1}]})
        assert info.value.status == 503
        assert service.metrics.store_errors._value.get() >= 1
        os.makedirs(store.parent)
        service.outcomes.poll()  # reopened at the next poll
        assert service.outcomes.store is not None and service.outcomes.store.schema_version() == 1
        answers = [_call(service, {"model_name": "credit", "input_data": rows[i : i + 10]}) for i in (0, 10, 20, 30)]
        rid = answers[0]["request_id"]
        bad = [
            (b"[1]", 400, "must be a JSON object"),
            (b'{"outcome": []}', 400, "the request must be"),
            ({"outcomes": []}, 400, "1 to 10000"),
            ({"outcomes": [{"request_id": rid, "row": 0, "label": 2}]}, 400, r"outcomes\[0\].label must be 0 or 1"),
            ({"outcomes": [{"request_id": rid, "row": -1, "label": 1}]}, 400, r"outcomes\[0\].row"),
            ({"outcomes": [{"request_id": rid, "label": 1, "observed_at": "yesterday"}]}, 400, "ISO 8601"),
            ({"outcomes": [{"request_id": rid, "label": 1, "extra": 1}]}, 400, "unknown field"),
            ({"outcomes": [{"request_id": rid, "label": 1}, {"request_id": rid, "label": 0}]}, 400, "repeats"),
            ({"outcomes": [{"request_id": "nope", "row": 0, "label": 1}]}, 404, "no stored prediction"),
            ({"outcomes": [{"request_id": rid, "row": 10, "label": 1}]}, 404, "row 10"),
            ({"outcomes": [{"request_id": rid, "label": 1, "observed_at": "2001-01-01T00:00:00Z"}]}, 422, "before"),
        ]
        for body, status, message in bad:
            with pytest.raises(RequestError, match=message) as info:
                _post(service, body)
            assert info.value.status == status
        assert _perf(service)["n"] == 0  # nothing of a refused batch was stored
        scores, labels, vs = [], [], []
        for a, lo in zip(answers, (0, 10, 20, 30)):
            items = [{"request_id": a["request_id"], "row": r, "label": int(y[lo + r])} for r in range(10)]
            assert _post(service, {"outcomes": items}) == {"stored": 10}
            scores += [p[0] for p in a["predictions"]]
            labels += [int(y[lo + r]) for r in range(10)]
            vs += [a["model_version"]] * 10
        with service.outcomes.store.engine.connect() as conn:  # the input digest, as in the audit log
            stored = conn.exec_driver_sql("SELECT input_sha256 FROM maasfin_predictions WHERE request_id = ?", (rid,))
            digests = set(stored.scalars())
        with service.repository.lease("credit", version=1) as v:
            names = v.signature.input_names()
        assert digests == {input_digest([np.asarray(rows[0:10], dtype=np.float32)], names)}
        with pytest.raises(RequestError, match="already has an outcome") as info:
            _post(service, {"outcomes": [{"request_id": rid, "row": 0, "label": 1}]})
        assert info.value.status == 409
        perf = _perf(service)
        _check(perf, np.array(scores), np.array(labels))
        for v, pv in perf["versions"].items():
            m = np.array(vs) == int(v)
            assert pv["n"] == m.sum() and pv["mean_pd"] == pytest.approx(np.mean(np.array(scores)[m]), abs=1e-12)
        one = _perf(service, version=vs[0])
        assert one["n"] == vs.count(vs[0]) and list(one["versions"]) == [str(vs[0])]
        assert _perf(service, {"until": "2001-01-01"})["n"] == 0 and _perf(service, {"since": "0"})["n"] == 40
        for query, message in (
            ({"since": "x"}, "since"),
            ({"from": "1"}, "unknown query"),
            ({"since": 5, "until": 1}, "later"),
        ):
            with pytest.raises(RequestError, match=message):
                _perf(service, {k: str(v) for k, v in query.items()})
        text = service.metrics.render().decode()
        assert 'maasfin_realised_performance{metric="roc_auc",model="credit",version=""}' in text
    finally:
        service.stop()


def _replay_across_restart(root, x, y, store: str, tmp_path):
    args = (root, "--workers", 2, "--poll-seconds", 0, "--store", store)
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}
    os.makedirs(env["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    with Serve(*args, env=env) as srv:
        ids, scores, versions = replay(srv.url, x)
        half = N // 2
        r = requests.post(srv.url + "/v1/outcomes", json=outcomes_body(ids, y, 0, half), timeout=60)
        assert r.status_code == 200 and r.json() == {"stored": half}, r.text
    with Serve(*args, env=env) as srv:  # a restart: what was stored is still there
        r = requests.post(srv.url + "/v1/outcomes", json=outcomes_body(ids, y, half, N), timeout=60)
        assert r.status_code == 200 and r.json() == {"stored": N - half}, r.text
        r = requests.post(srv.url + "/v1/outcomes", json=outcomes_body(ids, y, 0, 3), timeout=60)
        assert r.status_code == 409, r.text
        perf = requests.get(srv.url + "/v1/models/credit/performance", timeout=60).json()
        per_v = {
            v: requests.get(srv.url + f"/v1/models/credit/versions/{v}/performance", timeout=60).json() for v in (1, 2)
        }
        metrics = requests.get(srv.url + "/metrics", timeout=60).text
    _check(perf, scores, y)
    versions = np.asarray(versions)
    assert set(versions) == {1, 2}
    for v in (1, 2):
        m = versions == v
        _check(perf["versions"][str(v)], scores[m], y[m])
        _check(per_v[v], scores[m], y[m])
    assert 'maasfin_realised_performance{metric="n",model="credit",version=""}' in metrics


def test_replay_through_two_workers_across_a_restart_sqlite(credit_repo, tmp_path):
    root, x, y = credit_repo
    _replay_across_restart(root, x, y, str(tmp_path / "outcomes.db"), tmp_path)
    store = OutcomeStore(str(tmp_path / "outcomes.db"))
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert store.schema_version() == 1


@pytest.fixture(scope="module")
def postgres():
    if os.environ.get("MAASFIN_SKIP_POSTGRES") == "1":
        pytest.skip("MAASFIN_SKIP_POSTGRES=1 set explicitly")
    with Postgres() as pg:
        yield pg


def test_replay_through_two_workers_across_a_restart_postgresql(credit_repo, tmp_path, postgres):
    root, x, y = credit_repo
    _replay_across_restart(root, x, y, postgres.url, tmp_path)
    store = OutcomeStore(postgres.url)  # same schema, same migrations
    assert store.schema_version() == 1
    store.close()


def test_postgresql_down_keeps_predictions_served(credit_repo, tmp_path, postgres):
    root, x, _ = credit_repo
    service = Service(ServingConfig(repo=str(root), poll_seconds=0, store=postgres.url))
    service.start(set_threads=False)
    try:
        first = _call(service, {"model_name": "credit", "input_data": x.to_numpy()[:3].tolist()})
        postgres.stop()
        try:
            answer = _call(service, {"model_name": "credit", "input_data": x.to_numpy()[:3].tolist()})
            assert len(answer["predictions"]) == 3
            assert service.metrics.store_errors._value.get() >= 1
            with pytest.raises(RequestError) as info:
                _post(service, {"outcomes": [{"request_id": first["request_id"], "label": 1}]})
            assert info.value.status == 503
        finally:
            postgres.start()
        assert wait_for(lambda: _post_ok(service, first["request_id"]))
    finally:
        service.stop()


def _post_ok(service, rid) -> bool:
    try:
        return _post(service, {"outcomes": [{"request_id": rid, "label": 1}]}) == {"stored": 1}
    except RequestError:
        return False


def test_flask_blueprint_serves_the_outcome_endpoints(credit_repo, tmp_path):
    root, x, y = credit_repo
    app = Flask("outcomes")
    app.register_blueprint(flask_blueprint(str(root), poll_seconds=0, store=str(tmp_path / "o.db")), url_prefix="/ml")
    client = app.test_client()
    r = client.post("/ml/v1/predict", json={"model_name": "credit", "input_data": x.to_numpy()[:20].tolist()})
    assert r.status_code == 200 and r.json["request_id"] == r.headers["X-Request-ID"]
    items = [{"request_id": r.json["request_id"], "row": i, "label": int(y[i])} for i in range(20)]
    assert client.post("/ml/v1/outcomes", json={"outcomes": items}).json == {"stored": 20}
    assert client.post("/ml/v1/outcomes", json={"outcomes": items[:1]}).status_code == 409
    perf = client.get("/ml/v1/models/credit/performance?since=0").json
    _check(perf, np.array([p[0] for p in r.json["predictions"]]), y[:20])
    assert client.get("/ml/v1/models/credit/performance?since=soon").status_code == 400
