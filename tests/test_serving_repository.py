"""The model repository under a live server: hot swap under continuous load, corrupt versions,
labels, unloading after in-flight requests, and adaptive batching."""

import json
import os
import shutil
import threading
import time

import numpy as np
import requests
from serving_support import ServerThread, credit_frame, credit_model, put, put_labels, run_threads

import maasfin as mf
from maasfin.serving import ModelRepository, create_app

TIMEOUT = 10


def _f32(x):
    return np.asarray(x, dtype=np.float64).astype(np.float32)


def _expected(model_path, df):
    return mf.models.load_model(model_path, compile=False).predict(df)


def test_hot_swap_under_load_has_no_failures(tmp_path):
    repo = tmp_path / "repo"
    put(repo, "credit", 1, credit_model(seed=11))
    v2_model = credit_model(seed=12, epochs=2)
    df = credit_frame(32, seed=200)
    rows = df.to_numpy().tolist()
    expected = {1: _expected(repo / "credit/1/model.maas", df), 2: v2_model.predict(df)}
    assert not np.array_equal(expected[1], expected[2])
    app = create_app(repo, poll_seconds=0.1, max_latency_ms=1.0)
    stop = threading.Event()
    seen = [[] for _ in range(6)]
    failures = []

    def client(i):
        with requests.Session() as s:
            k = 0
            deadline = time.monotonic() + 20  # bounded even if the test body failed to stop us
            while not stop.is_set() and time.monotonic() < deadline:
                lo = (i * 5 + k) % 28
                r = s.post(
                    app_url + "/v1/predict",
                    json={"model_name": "credit", "input_data": rows[lo : lo + 4]},
                    timeout=TIMEOUT,
                )
                k += 1
                if r.status_code != 200:
                    failures.append((r.status_code, r.text))
                    continue
                body = r.json()
                v = body["model_version"]
                if v not in expected or not np.array_equal(_f32(body["predictions"]), expected[v][lo : lo + 4]):
                    failures.append(("wrong answer", v))
                seen[i].append(v)

    with ServerThread(app) as server:
        app_url = server.url
        threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        put(repo, "credit", 2, v2_model)  # written atomically by model.save
        deadline = time.monotonic() + 10
        while not all(s_ and s_[-1] == 2 for s_ in seen) and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(repo / "credit" / "1")  # v1 goes away while requests keep coming
        deadline = time.monotonic() + 10
        service = app.state.maasfin
        while len(service.repository.loaded_versions()) != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join(30)
        status = requests.get(server.url + "/v1/models/credit", timeout=TIMEOUT).json()
        metrics = requests.get(server.url + "/metrics", timeout=TIMEOUT).text
    assert failures == []
    assert all(len(s_) > 10 for s_ in seen)
    for s_ in seen:  # every thread moved from 1 to 2 once, and never back
        assert s_[0] == 1 and s_[-1] == 2
        first2 = s_.index(2)
        assert set(s_[first2:]) == {2}
    assert status == {
        "model_version_status": [
            {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    assert "maasfin_model_versions_loaded 1.0" in metrics


def test_corrupt_version_does_not_displace_the_good_one(tmp_path):
    repo = tmp_path / "repo"
    put(repo, "credit", 1, credit_model(seed=21))
    df = credit_frame(32, seed=201)
    e1 = _expected(repo / "credit/1/model.maas", df)
    app = create_app(repo, poll_seconds=0)
    service = app.state.maasfin
    with ServerThread(app) as server, requests.Session() as s:
        os.makedirs(repo / "credit" / "2")
        (repo / "credit" / "2" / "model.maas").write_bytes(b"not a zip")
        service.poll()
        path2 = str(repo / "credit" / "2" / "model.maas")
        err = f"model file '{path2}': is not a maasfin model file (not a zip archive)"
        assert s.get(server.url + "/v1/models/credit", timeout=TIMEOUT).json() == {
            "model_version_status": [
                {"version": "2", "state": "END", "status": {"error_code": "UNKNOWN", "error_message": err}},
                {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
            ]
        }
        r = s.post(
            server.url + "/v1/predict",
            json={"model_name": "credit", "input_data": df.to_numpy().tolist()},
            timeout=TIMEOUT,
        )
        assert r.json()["model_version"] == 1 and np.array_equal(_f32(r.json()["predictions"]), e1)
        r = s.post(
            server.url + "/v1/predict",
            json={"model_name": "credit", "model_version": 2, "input_data": df.to_numpy().tolist()},
            timeout=TIMEOUT,
        )
        assert (r.status_code, r.json()) == (
            404,
            {"error": f"model 'credit' has no available version 2 (version 2 failed to load: {err})"},
        )
        # a truncated copy of a real model fails too; the failure is not retried until the file changes
        good = credit_model(seed=22)
        good.save(tmp_path / "good.maas")
        blob = (tmp_path / "good.maas").read_bytes()
        (repo / "credit" / "2" / "model.maas").write_bytes(blob[: len(blob) // 2])
        service.poll()
        st = service.repository.status("credit")
        assert st["versions"][0]["state"] == "FAILED" and "truncated or corrupt" in st["versions"][0]["error"]
        assert st["default_version"] == 1
        # fixed: version 2 loads and serves
        os.replace(tmp_path / "good.maas", repo / "credit" / "2" / "model.maas")
        service.poll()
        r = s.post(
            server.url + "/v1/predict",
            json={"model_name": "credit", "input_data": df.to_numpy().tolist()},
            timeout=TIMEOUT,
        )
        assert r.json()["model_version"] == 2 and np.array_equal(_f32(r.json()["predictions"]), good.predict(df))
        # overwriting version 2 in place with garbage keeps the loaded copy serving, and says so
        (repo / "credit" / "2" / "model.maas").write_bytes(b"garbage")
        service.poll()
        st = service.repository.status("credit")["versions"][0]
        assert st["version"] == 2 and st["state"] == "AVAILABLE" and "not a zip archive" in st["error"]
        r = s.post(
            server.url + "/v1/predict",
            json={"model_name": "credit", "input_data": df.to_numpy().tolist()},
            timeout=TIMEOUT,
        )
        assert r.json()["model_version"] == 2 and np.array_equal(_f32(r.json()["predictions"]), good.predict(df))
        metrics = s.get(server.url + "/metrics", timeout=TIMEOUT).text
        assert 'maasfin_model_load_failures_total{model="credit"} 3.0' in metrics


def test_labels_follow_the_file(tmp_path):
    repo = tmp_path / "repo"
    put(repo, "credit", 1, credit_model(seed=31))
    put(repo, "credit", 2, credit_model(seed=32))
    put_labels(repo, "credit", {"stable": 1})
    r = ModelRepository(repo, poll_seconds=0)
    r.start()
    with r.lease("credit", label="stable") as v:
        assert v.version == 1
    time.sleep(0.01)
    put_labels(repo, "credit", {"stable": 2, "canary": 3})
    r.poll()
    with r.lease("credit", label="stable") as v:
        assert v.version == 2
    try:
        r.lease("credit", label="canary")
        raise AssertionError("expected a 404")
    except mf.serving.RequestError as e:
        assert (e.status, e.message) == (
            404,
            "label 'canary' of model 'credit' points to version 3, which is not available; available versions: [1, 2]",
        )
    (repo / "credit" / "labels.json").write_text('{"stable": "two"}')
    r.poll()
    st = r.status("credit")
    assert st["labels"] == {"stable": 2, "canary": 3}
    assert (
        st["labels_error"] == f"{repo / 'credit' / 'labels.json'}: label 'stable' maps to 'two', not a version number"
    )


def test_removed_version_unloads_after_in_flight_requests(tmp_path):
    repo = tmp_path / "repo"
    put(repo, "credit", 1, credit_model(seed=41))
    put(repo, "credit", 2, credit_model(seed=42))
    r = ModelRepository(repo, poll_seconds=0)
    r.start()
    unloaded = []
    lease = r.lease("credit", version=1)
    v1 = lease.version
    v1.on_unload(lambda v: unloaded.append(v.version))
    shutil.rmtree(repo / "credit" / "1")
    r.poll()
    try:
        r.lease("credit", version=1)
        raise AssertionError("expected a 404")
    except mf.serving.RequestError as e:
        assert (e.status, e.message) == (404, "model 'credit' has no available version 1; available versions: [2]")
    assert v1.retired and unloaded == []  # still in use
    x = credit_frame(32, seed=3).to_numpy()
    assert mf.serving.predict_tiled(v1.model, [x]).shape == (32, 1)  # the in-flight request completes
    lease.release()
    assert unloaded == [1] and v1.model is None
    with r.lease("credit") as v:
        assert v.version == 2


def test_concurrent_requests_are_batched_and_exact(tmp_path):
    repo = tmp_path / "repo"
    put(repo, "credit", 1, credit_model(seed=51))
    df = credit_frame(64, seed=202)
    expected = _expected(repo / "credit/1/model.maas", df)
    rows = df.to_numpy().tolist()
    app = create_app(repo, poll_seconds=0, max_latency_ms=30.0, predict_threads=1, max_batch_size=64)
    results = {}
    with ServerThread(app) as server:
        barrier = threading.Barrier(16)

        def client(i):
            with requests.Session() as s:
                for k in range(4):
                    row = (i * 4 + k) % 64
                    barrier.wait(timeout=20)
                    r = s.post(
                        server.url + "/v1/predict",
                        json={"model_name": "credit", "input_data": [rows[row]]},
                        timeout=TIMEOUT,
                    )
                    assert r.status_code == 200, r.text
                    results[(i, k)] = (row, _f32(r.json()["predictions"]))

        run_threads(16, client)
        metrics = requests.get(server.url + "/metrics", timeout=TIMEOUT).text
    assert len(results) == 64
    for row, got in results.values():  # whatever it was batched with, each row is bit-identical
        assert np.array_equal(got, expected[row : row + 1])
    count = _metric(metrics, 'maasfin_batch_requests_count{model="credit",version="1"}')
    total = _metric(metrics, 'maasfin_batch_requests_sum{model="credit",version="1"}')
    assert total == 64.0 and count < 64, (count, total)  # some requests shared a predict call
    assert _metric(metrics, 'maasfin_predicted_rows_total{model="credit",version="1"}') == 64.0


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in metrics")


def test_repository_rules(tmp_path):
    repo = tmp_path / "repo"
    put(repo, "credit", 3, credit_model(seed=61))
    put(repo, "credit", 10, credit_model(seed=62))
    os.makedirs(repo / "credit" / "11")  # a version directory still being written: ignored
    os.makedirs(repo / "credit" / "latest")  # not a version number: ignored
    os.makedirs(repo / "bad:name" / "1")  # not a valid model name: ignored
    (repo / "README.txt").write_text("not a model")
    r = ModelRepository(repo, poll_seconds=0)
    assert not r.ready()  # nothing loads before start()
    r.start()
    assert r.names() == ["credit"] and r.ready()
    with r.lease("credit") as v:
        assert v.version == 10  # newest by number, not by name
    assert [x["version"] for x in r.status("credit")["versions"]] == [10, 3]
    json.dumps(r.status("credit"))
