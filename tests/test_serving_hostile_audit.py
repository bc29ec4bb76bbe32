"""Hostile requests and the audit log: one complete, bounded line per request, on both front ends."""

import hashlib
import json
import subprocess
import sys

import pytest
import requests
from flask import Flask
from serving_support import FlaskThread, ServerThread, credit_model, put

from maasfin.serving import add_key, create_app, flask_blueprint
from maasfin.serving.audit import capped, encode_line
from maasfin.serving.auth import KeysFileError, read_keys_file

TIMEOUT = 20
ROW = [0.5, 0.2, 0.1, 0.3, 0.0]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    put(repo, "credit", 1, credit_model(seed=1))
    return repo


@pytest.fixture(params=["asgi", "flask"])
def front(request, repo, tmp_path):
    """(url, audit path, keys {name: key}) of a front end with keys and an audit log."""
    keys_path = tmp_path / "keys.json"
    keys = {
        "scoring": add_key(keys_path, "scoring", ["credit"]),
        "ops": add_key(keys_path, "ops", ["*"]),
        "prometheus": add_key(keys_path, "prometheus", [], scopes=["metrics"]),
    }
    audit = tmp_path / "audit.jsonl"
    options = dict(poll_seconds=0, api_keys=str(keys_path), audit_log=str(audit))
    if request.param == "asgi":
        with ServerThread(create_app(repo, **options)) as server:
            yield server.url, audit, keys
    else:
        app = Flask("hostile")
        app.register_blueprint(flask_blueprint(repo, **options))
        with FlaskThread(app) as server:
            yield server.url, audit, keys


def _lines(audit):
    raw = audit.read_bytes()
    assert raw.endswith(b"\n")
    return [json.loads(line) for line in raw.decode("utf-8").splitlines()]


def test_lone_surrogate_and_huge_model_names_are_audited(front):
    url, audit, keys = front
    surrogate = b'{"model_name": "\\ud800", "input_data": [[0.5, 0.2, 0.1, 0.3, 0.0]]}'
    huge = "m" * (4 << 20)
    sent = [
        (keys["scoring"], surrogate, 403),  # refused for the model
        (keys["ops"], surrogate, 404),  # reaches the repository
        (keys["scoring"], json.dumps({"model_name": huge, "input_data": [ROW]}).encode(), 403),
        (keys["ops"], json.dumps({"model_name": huge, "input_data": [ROW]}).encode(), 404),
        (keys["ops"], json.dumps({"model_name": "credit", "input_data": [ROW]}).encode(), 200),
    ]
    for key, body, status in sent:
        r = requests.post(url + "/v1/predict", data=body, headers={"Authorization": f"Bearer {key}"}, timeout=TIMEOUT)
        assert r.status_code == status, r.text[:300]
    lines = _lines(audit)
    assert [line["status"] for line in lines] == [s for _, _, s in sent]
    assert audit.stat().st_size < 8 * 1024  # not megabytes
    assert lines[0]["model"] == "\ud800" and lines[1]["model"] == "\ud800"
    full = hashlib.sha256(huge.encode()).hexdigest()
    for line in lines[2:4]:
        assert line["model"] == "m" * 256 and line["model_sha256"] == full
        assert len(line["error"]) == 256 and "error_sha256" in line
    assert lines[4]["model"] == "credit" and "model_sha256" not in lines[4]


def test_metrics_needs_the_metrics_scope(front):
    url, audit, keys = front
    requests.post(
        url + "/v1/predict",
        json={"model_name": "credit", "input_data": [ROW]},
        headers={"X-API-Key": keys["scoring"]},
        timeout=TIMEOUT,
    )
    assert requests.get(url + "/metrics", timeout=TIMEOUT).status_code == 401
    for name in ("scoring", "ops"):  # a key for one model, or for every model, but without the scope
        r = requests.get(url + "/metrics", headers={"X-API-Key": keys[name]}, timeout=TIMEOUT)
        assert (r.status_code, r.json()) == (
            403,
            {"error": f"API key '{name}' may not read /metrics: that needs a key with the 'metrics' scope"},
        )
        assert "credit" not in r.text
    r = requests.get(url + "/metrics", headers={"Authorization": "Bearer " + keys["prometheus"]}, timeout=TIMEOUT)
    assert r.status_code == 200 and 'model="credit"' in r.text
    # a metrics-only key predicts nothing
    r = requests.post(
        url + "/v1/predict",
        json={"model_name": "credit", "input_data": [ROW]},
        headers={"X-API-Key": keys["prometheus"]},
        timeout=TIMEOUT,
    )
    assert r.status_code == 403


def test_keys_file_scopes(tmp_path):
    path = tmp_path / "keys.json"
    add_key(path, "prometheus", [], scopes=["metrics"])
    assert json.loads(path.read_text())["prometheus"]["scopes"] == ["metrics"]
    assert read_keys_file(path)["prometheus"].scopes == ("metrics",)
    with pytest.raises(KeysFileError, match="'scopes' must be a list of scopes from"):
        add_key(path, "bad", ["credit"], scopes=["admin"])
    with pytest.raises(KeysFileError, match="may be empty only for a key with scopes"):
        add_key(path, "nothing", [])
    out = subprocess.run(
        [sys.executable, "-m", "maasfin", "keys", "add", str(path), "scraper", "--scopes", "metrics"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "scopes: metrics" in out.stderr
    out = subprocess.run(
        [sys.executable, "-m", "maasfin", "keys", "list", str(path)], capture_output=True, text=True, timeout=60
    )
    assert "scraper\t\tscopes=metrics" in out.stdout


def test_capped_and_encode_line():
    rec = {"a": "x" * 300, "b": 1, "c": "\udfff"}
    out = capped(rec, 256)
    assert list(out) == ["a", "a_sha256", "b", "c"]
    assert out["a"] == "x" * 256 and out["a_sha256"] == hashlib.sha256(b"x" * 300).hexdigest()
    line = encode_line(out)
    assert line.endswith(b"\n") and b"\\udfff" in line
    assert json.loads(line)["c"] == "\udfff"
    assert encode_line({"m": "é"}) == '{"m":"é"}\n'.encode()


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/credit/versions/\u0661",
        "/v1/models/credit/versions/\u00b2/metadata",
        "/v1/models/credit/versions/\u2460/drift",
        "/v2/models/credit/versions/\u0661",
        "/v2/models/credit/versions/\u00b2/ready",
    ],
)
def test_non_ascii_digits_in_read_urls_are_not_versions(front, path):
    url, _, keys = front
    r = requests.get(url + path, headers={"X-API-Key": keys["ops"]}, timeout=TIMEOUT)
    digit = path.split("/versions/")[1].split("/")[0]
    assert (r.status_code, r.json()) == (400, {"error": f"version {digit!r} in the URL is not a version number"})
