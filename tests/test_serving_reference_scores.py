"""Scores on the representative rows recorded at save time, and the warm-up that compares them:
a file whose weights were altered after saving never serves; the good version keeps serving."""

import hashlib
import io
import json
import zipfile

import numpy as np
import pytest
import requests
from flask import Flask
from serving_support import FlaskThread, ServerThread, credit_frame, credit_model, put

import maasfin as mf
from maasfin.explain.representative import SCORE_ATOL, SCORE_RTOL, predict_in_tiles, representative_rows
from maasfin.saving.file_format import ModelFileError
from maasfin.serving import create_app, flask_blueprint
from maasfin.serving.warmup import warm_up

TIMEOUT = 20


def _members(path) -> dict:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def _write(path, members: dict) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    path.write_bytes(buf.getvalue())


def _edit_config(path, edit) -> None:
    m = _members(path)
    doc = json.loads(m["config.json"])
    edit(doc)
    m["config.json"] = json.dumps(doc).encode()
    _write(path, m)


def tampered_file(tmp_path, good_model, path):
    """`good_model`'s file (its config with the recorded scores) carrying other weights: each kernel
    scaled by 1.01, with the metadata's weights hash updated to match, as a broken export or an
    edit of the weights would leave it."""
    good = tmp_path / "good.maas"
    good_model.save(good)
    altered = mf.models.load_model(good, compile=False)
    altered.set_weights([w * np.float32(1.01) for w in altered.get_weights()])
    other = tmp_path / "altered.maas"
    altered.save(other)
    m, w = _members(good), _members(other)["weights.safetensors"]
    meta = json.loads(m["metadata.json"])
    meta["sha256"]["weights.safetensors"] = hashlib.sha256(w).hexdigest()
    m["weights.safetensors"], m["metadata.json"] = w, json.dumps(meta).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, m)


def test_scores_are_recorded_at_save_and_loaded(tmp_path):
    model = credit_model(seed=41)
    model.save(tmp_path / "m.maas")
    doc = json.loads(_members(tmp_path / "m.maas")["config.json"])
    recorded = doc["explanations"]["reference_scores"]
    rows = representative_rows(model, model.signature)
    assert len(recorded) == rows[0].shape[0] == 10 and all(len(r) == 1 for r in recorded)
    assert np.array_equal(np.asarray(recorded, np.float32), model.predict(rows[0], batch_size=32))
    loaded = mf.models.load_model(tmp_path / "m.maas", compile=False)
    assert loaded.reference_scores == recorded
    warm_up(loaded, loaded.signature, 32)  # the loaded model reproduces them


def test_files_without_scores_still_load_and_bad_scores_are_refused(tmp_path):
    path = tmp_path / "m.maas"
    credit_model(seed=42).save(path)
    _edit_config(path, lambda d: d["explanations"].pop("reference_scores"))
    old = mf.models.load_model(path, compile=False)
    assert old.reference_scores is None
    warm_up(old, old.signature, 32)
    for bad, message in [
        ([[0.5], ["x"]], r"explanations.reference_scores\[1\]\[0\] must be a finite number"),
        ([[0.5], [0.1, 0.2]], r"explanations.reference_scores\[1\] has 2 values, expected 1"),
        ([], "explanations.reference_scores must not be empty"),
    ]:
        _edit_config(path, lambda d, bad=bad: d["explanations"].__setitem__("reference_scores", bad))
        with pytest.raises(ModelFileError, match=message):
            mf.models.load_model(path, compile=False)


def test_warm_up_refuses_scores_beyond_the_tolerance(tmp_path):
    model = credit_model(seed=43)
    model.save(tmp_path / "m.maas")
    loaded = mf.models.load_model(tmp_path / "m.maas", compile=False)
    y = predict_in_tiles(loaded, representative_rows(loaded, loaded.signature)).astype(np.float64)
    within = y + 0.9 * (SCORE_ATOL + SCORE_RTOL * np.abs(y))
    loaded._reference_scores = within.tolist()
    warm_up(loaded, loaded.signature, 32)
    beyond = y.copy()
    beyond[3, 0] += 2 * (SCORE_ATOL + SCORE_RTOL * abs(y[3, 0]))
    loaded._reference_scores = beyond.tolist()
    with pytest.raises(ValueError, match=r"1 of 10 representative rows score differently .* \(row 3, output 0"):
        warm_up(loaded, loaded.signature, 32)


@pytest.mark.parametrize("front", ["asgi", "flask"])
def test_a_tampered_version_never_serves(tmp_path, front):
    repo = tmp_path / "repo"
    put(repo, "credit", 1, credit_model(seed=44))
    if front == "asgi":
        app = create_app(repo, poll_seconds=0)
        service, runner = app.state.maasfin, ServerThread(app)
    else:
        bp = flask_blueprint(repo, poll_seconds=0)
        app = Flask("reference_scores")
        app.register_blueprint(bp)
        service, runner = bp.maasfin, FlaskThread(app)
    rows = credit_frame(4, seed=45).to_numpy().tolist()
    with runner as server, requests.Session() as s:
        first = s.post(server.url + "/v1/predict", json={"model_name": "credit", "input_data": rows}, timeout=TIMEOUT)
        assert first.status_code == 200
        tampered_file(tmp_path, credit_model(seed=46), repo / "credit" / "2" / "model.maas")
        service.poll()
        status = s.get(server.url + "/v1/models/credit", timeout=TIMEOUT).json()["model_version_status"]
        assert status[0]["version"] == "2" and status[0]["state"] == "END"
        assert (
            "score differently from the scores recorded when the model was saved"
            in (status[0]["status"]["error_message"])
        )
        assert status[1] == {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        r = s.post(server.url + "/v1/predict", json={"model_name": "credit", "input_data": rows}, timeout=TIMEOUT)
        same = {k: v for k, v in r.json().items() if k != "request_id"}  # one request id per request
        assert r.status_code == 200 and same == {k: v for k, v in first.json().items() if k != "request_id"}
