"""Traffic policies in labels.json: weighted splits, sticky routing keys, shadow versions, validation
and hot reload (maasfin.serving.routing, maasfin.serving.shadow)."""

import json
import os
import uuid

import numpy as np
import pytest
import requests
from serving_support import ServerThread, plain_model, put, put_labels

from maasfin.serving import ServingConfig, create_app
from maasfin.serving.exchange import Exchange
from maasfin.serving.protocols import simple
from maasfin.serving.routing import key_bucket, parse_policy
from maasfin.serving.service import Service

ROWS = [[0.1, -0.4, 0.7], [1.0, 0.2, -0.3]]


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    models = {v: plain_model(seed=30 + v) for v in (1, 2, 3)}
    for v, m in models.items():
        put(root, "m", v, m)
    expected = {v: m.predict(np.asarray(ROWS, dtype=np.float32)) for v, m in models.items()}
    for a in (1, 2, 3):
        for b in (1, 2, 3):
            if a != b:
                assert not np.allclose(expected[a], expected[b])
    return root, expected


def _call(service, body: dict, headers=None):
    """One simple request through the service, as the Flask front end runs it (no HTTP)."""
    ex = Exchange("simple", "POST", "/v1/predict", None)
    plan = simple.plan(service, ex, json.dumps(body).encode(), {}, headers or {})
    try:
        reply = service.reply(plan, service.predict(plan))
    finally:
        plan.lease.release()
    service.finish(ex, reply.status)
    return ex, reply


def test_split_is_within_weights_and_sticky_per_key(repo):
    root, expected = repo
    put_labels(root, "m", {"stable": 1, "routing": {"split": {"1": 70, "2": 25.5, "3": 4.5}}})
    service = Service(ServingConfig(repo=str(root), poll_seconds=0))
    service.start(set_threads=False)
    try:
        counts = {1: 0, 2: 0, 3: 0}
        first = {}
        keys = [uuid.UUID(int=int(k)).hex for k in np.random.default_rng(5).integers(0, 2**62, 10_000)]
        for i, key in enumerate(keys):
            body = {"model_name": "m", "input_data": ROWS}
            headers = {}
            if i % 2:
                body["routing_key"] = key
            else:
                headers = {"x-routing-key": key}
            ex, reply = _call(service, body, headers)
            answer = json.loads(reply.body)
            v = answer["model_version"]
            assert ex.route == "sticky" and ex.version == v
            assert reply.headers["X-Model-Version"] == str(v)
            if i < 200:  # the answer is the chosen version's own
                np.testing.assert_allclose(answer["predictions"], expected[v], rtol=1e-6)
            counts[v] += 1
            first[key] = v
        for v, w in ((1, 70), (2, 25.5), (3, 4.5)):
            assert abs(100 * counts[v] / len(keys) - w) <= 1.5, counts
        for key in keys[:300]:  # the same key always gets the same version, by field or header
            ex, _ = _call(service, {"model_name": "m", "input_data": ROWS, "routing_key": key})
            assert ex.version == first[key]
            ex, _ = _call(service, {"model_name": "m", "input_data": ROWS}, {"x-routing-key": key})
            assert ex.version == first[key]
        # a named version or label is not routed; a request without a key is split at random
        ex, _ = _call(service, {"model_name": "m", "model_version": 3, "input_data": ROWS, "routing_key": keys[0]})
        assert (ex.version, ex.route) == (3, "version")
        ex, _ = _call(service, {"model_name": "m", "model_version": "stable", "input_data": ROWS})
        assert (ex.version, ex.route) == (1, "label")
        seen = {_call(service, {"model_name": "m", "input_data": ROWS})[0].version for _ in range(200)}
        assert seen >= {1, 2}
        # the bucket is a fixed function of the key (BLAKE2b), the same in every process
        assert key_bucket("applicant-42") == key_bucket("applicant-42")
        assert len({key_bucket(f"k{i}") for i in range(1000)}) > 900
    finally:
        service.stop()


def test_shadow_outputs_reach_only_the_audit_log_and_metrics(repo, tmp_path):
    root, expected = repo
    put_labels(root, "m", {"routing": {"split": {"1": 50, "2": 50}, "shadow": [3]}})
    audit = tmp_path / "audit.jsonl"
    app = create_app(root, poll_seconds=0, audit_log=str(audit), audit_outputs="values")
    service = app.state.maasfin
    answered = {}
    with ServerThread(app) as srv, requests.Session() as s:
        for i in range(24):
            r = s.post(
                srv.url + "/v1/predict",
                json={"model_name": "m", "input_data": ROWS},
                headers={"X-Routing-Key": f"applicant-{i}"},
                timeout=10,
            )
            assert r.status_code == 200, r.text
            body = r.json()
            v = body["model_version"]
            assert v in (1, 2) and r.headers["x-model-version"] == str(v)
            np.testing.assert_allclose(body["predictions"], expected[v], rtol=1e-6)
            assert not np.allclose(body["predictions"], expected[3])
            answered[r.headers["x-request-id"]] = v
        assert service.shadows.wait_idle(30)
        metrics = s.get(srv.url + "/metrics", timeout=10).text
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    primary = {rec["request_id"]: rec for rec in lines if not rec.get("shadow") and rec["path"] == "/v1/predict"}
    shadows = {rec["request_id"]: rec for rec in lines if rec.get("shadow")}
    assert set(primary) == set(answered) == set(shadows)
    for rid, rec in primary.items():
        assert rec["version"] == answered[rid] and rec["route"] == "sticky"
        np.testing.assert_allclose(rec["outputs"], expected[answered[rid]], rtol=1e-6)
        sh = shadows[rid]
        assert sh["version"] == 3 and sh["route"] == "shadow" and sh["status"] == 200 and sh["rows"] == 2
        np.testing.assert_allclose(sh["outputs"], expected[3], rtol=1e-6)
    assert 'maasfin_routed_requests_total{model="m",route="shadow",version="3"} 24.0' in metrics
    n1 = sum(1 for v in answered.values() if v == 1)
    assert f'maasfin_routed_requests_total{{model="m",route="sticky",version="1"}} {float(n1)}' in metrics
    assert 'maasfin_shadow_latency_seconds_count{model="m",version="3"} 24.0' in metrics


@pytest.mark.parametrize(
    "policy, message",
    [
        ({"split": {"1": 60, "2": 30}}, "sum to 90, not 100"),
        ({"split": {"1": 60.001, "2": 39.999}}, "at most two decimals"),
        ({"split": {"1": "60", "2": 40}}, "not a percentage"),
        ({"split": {"one": 100}}, "is not a version number"),
        ({"split": {"1": 100}, "shadow": [1]}, "both in"),
        ({"split": {"1": 100}, "shadow": [2, 2]}, "twice"),
        ({"split": {"1": 100}, "shadow": 2}, "list of version numbers"),
        ({"split": [1, 2]}, "must be an object"),
        ({"canary": 10}, "unknown field"),
        ([1], "must be an object"),
    ],
)
def test_invalid_policies_are_refused_with_the_field(policy, message):
    with pytest.raises(ValueError, match=message):
        parse_policy(policy)


def test_policy_is_validated_on_load_and_hot_reloaded(repo):
    root, _ = repo
    put_labels(root, "m", {"routing": {"split": {"1": 100}}})
    service = Service(ServingConfig(repo=str(root), poll_seconds=0))
    service.start(set_threads=False)
    try:
        assert _call(service, {"model_name": "m", "input_data": ROWS, "routing_key": "a"})[0].version == 1
        # a policy naming a version not on disk is refused; the previous one stays in force
        put_labels(root, "m", {"routing": {"split": {"1": 50, "9": 50}}})
        os.utime(root / "m" / "labels.json", ns=(1, 1))
        service.poll()
        status = service.repository.status("m")
        assert "[9]" in status["labels_error"] and status["routing"]["split"] == {"1": 100}
        assert _call(service, {"model_name": "m", "input_data": ROWS, "routing_key": "a"})[0].version == 1
        # weights not summing to 100: refused likewise
        put_labels(root, "m", {"routing": {"split": {"1": 50, "2": 40}}})
        service.poll()
        assert "sum to 90" in service.repository.status("m")["labels_error"]
        # a valid change is picked up by the next poll
        put_labels(root, "m", {"stable": 1, "routing": {"split": {"2": 100}, "shadow": [3]}})
        service.poll()
        status = service.repository.status("m")
        assert status["labels_error"] is None and status["labels"] == {"stable": 1}
        assert status["routing"] == {"split": {"2": 100}, "shadow": [3]}
        ex, _ = _call(service, {"model_name": "m", "input_data": ROWS, "routing_key": "a"})
        assert (ex.version, ex.route) == (2, "sticky")
        assert service.shadows.wait_idle(30)
        # a routing key that is not a short string is refused at the boundary, naming the field
        for bad, headers, field in (
            ({"routing_key": 7}, {}, "routing_key"),
            ({"routing_key": "x" * 257}, {}, "routing_key"),
            ({}, {"x-routing-key": ""}, "X-Routing-Key"),
        ):
            with pytest.raises(Exception, match=field) as info:
                _call(service, {"model_name": "m", "input_data": ROWS, **bad}, headers)
            assert info.value.status == 400
    finally:
        service.stop()


def test_shadow_copies_are_merged_split_back_and_decoded_per_signature(repo, tmp_path):
    root, _ = repo
    models = {3: None, 4: plain_model(seed=44, d=4)}  # version 4 takes 4 features: its copy is decoded again
    put(root, "m", 4, models[4])
    put_labels(root, "m", {"routing": {"split": {"1": 100}, "shadow": [3, 4]}})
    audit = tmp_path / "audit.jsonl"
    service = Service(ServingConfig(repo=str(root), poll_seconds=0, audit_log=str(audit), audit_outputs="values"))
    service.start(set_threads=False)
    try:
        with service.repository.lease("m", version=3) as v3:
            m3 = v3.model
        rng = np.random.default_rng(9)
        sent = {}
        for i in range(40):
            rows = rng.standard_normal((1 + i % 3, 3)).round(3).tolist()
            ex, _ = _call(service, {"model_name": "m", "input_data": rows, "routing_key": f"k{i}"})
            sent[ex.request_id] = rows
        assert service.shadows.wait_idle(30)
    finally:
        service.stop()
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    shadow = [rec for rec in lines if rec.get("shadow")]
    assert len(shadow) == 80
    for rec in shadow:
        rows = sent[rec["request_id"]]
        if rec["version"] == 3:
            assert rec["status"] == 200 and rec["rows"] == len(rows)
            np.testing.assert_allclose(rec["outputs"], m3.predict(np.asarray(rows, dtype=np.float32)), rtol=1e-6)
        else:
            assert rec["version"] == 4 and rec["status"] == 400 and rec["outputs"] is None
            assert "4" in rec["error"]
    text = service.metrics.render().decode()
    assert 'maasfin_routed_requests_total{model="m",route="shadow",version="4"} 40.0' in text
