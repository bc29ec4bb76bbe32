"""Warm-up on representative rows: a version finite on zeros but NaN on real rows never serves."""

import numpy as np
import pytest
import requests
from flask import Flask
from serving_support import FlaskThread, ServerThread, credit_frame, credit_model, put

from maasfin.serving import create_app, flask_blueprint
from maasfin.serving.tiling import predict_tiled
from maasfin.serving.warmup import reference_rows

TIMEOUT = 20


def nan_on_real_rows_model():
    """Trained (so it stores a drift reference), then given weights that overflow to infinity in
    the hidden layer for any input with a positive sum, and turn inf - inf into NaN at the output;
    on zeros every hidden unit is relu(0) = 0 and the output is finite."""
    model = credit_model(seed=31)
    k1, b1, k2, b2 = model.get_weights()
    k2 = np.where(np.arange(k2.size).reshape(k2.shape) % 2 == 0, 1.0, -1.0).astype(np.float32)
    model.set_weights([np.full_like(k1, 1e38), np.zeros_like(b1), k2, np.zeros_like(b2)])
    return model


def test_reference_rows_make_the_model_fail_but_zeros_do_not():
    model = nan_on_real_rows_model()
    sig = model.signature
    zeros = predict_tiled(model, [np.zeros((32, 5), np.float32)])
    assert np.isfinite(zeros).all()
    rows = reference_rows(model, sig)
    assert rows is not None and rows[0].shape == (10, 5) and rows[0].dtype == np.float32  # 9 decile edges, the baseline
    assert not np.isfinite(predict_tiled(model, rows)).all()
    good = credit_model(seed=32)
    assert np.isfinite(predict_tiled(good, reference_rows(good, good.signature))).all()


@pytest.mark.parametrize("front", ["asgi", "flask"])
def test_nan_on_real_rows_version_never_serves(tmp_path, front):
    repo = tmp_path / "repo"
    put(repo, "credit", 1, credit_model(seed=33))
    if front == "asgi":
        app = create_app(repo, poll_seconds=0)
        service, runner = app.state.maasfin, ServerThread(app)
    else:
        bp = flask_blueprint(repo, poll_seconds=0)
        app = Flask("warmup")
        app.register_blueprint(bp)
        service, runner = bp.maasfin, FlaskThread(app)
    rows = credit_frame(4, seed=34).to_numpy().tolist()
    with runner as server, requests.Session() as s:
        assert s.post(server.url + "/v1/predict", json={"model_name": "credit", "input_data": rows}).status_code == 200
        put(repo, "credit", 2, nan_on_real_rows_model())
        service.poll()
        status = s.get(server.url + "/v1/models/credit", timeout=TIMEOUT).json()["model_version_status"]
        assert status[0]["version"] == "2" and status[0]["state"] == "END"
        assert "representative rows" in status[0]["status"]["error_message"]
        assert status[1] == {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        r = s.post(server.url + "/v1/predict", json={"model_name": "credit", "input_data": rows}, timeout=TIMEOUT)
        assert r.status_code == 200 and r.json()["model_version"] == 1
