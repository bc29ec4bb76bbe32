"""GET /v1/models/{name}[/versions/{v}]/card: the stored validation report as JSON or as its HTML page, keys applied."""

from __future__ import annotations

import numpy as np
import pytest
import requests
from flask import Flask
from serving_support import FlaskThread, ServerThread, credit_frame, credit_model, plain_model, put

from maasfin.serving import add_key, create_app, flask_blueprint
from maasfin.serving.cards import wants_html
from maasfin.serving.console import quantile_from_buckets

TIMEOUT = 60
META = {"owner": "<b>Risk</b> team", "intended_use": "scoring"}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("cards")
    repo = root / "repo"
    model = credit_model(seed=3, epochs=2)
    df = credit_frame(300, seed=9)
    y = ((df["income"] - df["debt_ratio"]) > 0).to_numpy(np.float64)
    report = model.validation_report(df, y, metadata=META, explain_rows=100, n_bootstrap=20)
    model.report = report
    put(str(repo), "credit", 1, model)
    put(str(repo), "plain", 1, plain_model(seed=1))  # no report
    keys = root / "keys.json"
    scoring = add_key(keys, "scoring", ["credit"])
    other = add_key(keys, "plain-only", ["plain"])
    report.page = report.to_html()  # rendered once for both front ends' checks
    return str(repo), str(keys), report, {"scoring": scoring, "other": other}


def _auth(key):
    return {"Authorization": f"Bearer {key}"}


def _check_cards(url, report, keys):
    s = requests.Session()
    h = _auth(keys["scoring"])
    r = s.get(url + "/v1/models/credit/card", headers=h, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["report"] == report.data and body["version"] == 1 and body["name"] == "credit"
    assert body["features"] == ["income", "debt_ratio", "age", "utilisation", "late_payments"]
    r = s.get(
        url + "/v1/models/credit/versions/1/card", headers={**h, "Accept": "text/html,*/*;q=0.8"}, timeout=TIMEOUT
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.text == report.page
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    # a key scoped to another model cannot see this one's card, and no key is no card
    r = s.get(url + "/v1/models/credit/card", headers=_auth(keys["other"]), timeout=TIMEOUT)
    assert r.status_code == 403, r.text
    assert s.get(url + "/v1/models/credit/card", timeout=TIMEOUT).status_code == 401
    plain = s.get(url + "/v1/models/plain/card", headers=_auth(keys["other"]), timeout=TIMEOUT)
    assert plain.status_code == 200 and plain.json()["report"] is None
    r = s.get(url + "/v1/models/plain/card", headers={**_auth(keys["other"]), "Accept": "text/html"}, timeout=TIMEOUT)
    assert r.status_code == 404 and "has no validation report" in r.json()["error"]
    r = s.get(url + "/v1/models/credit/versions/x/card", headers=h, timeout=TIMEOUT)
    assert r.status_code == 400 and "not a version number" in r.json()["error"]
    r = s.get(url + "/v1/models/credit/versions/7/card", headers=h, timeout=TIMEOUT)
    assert r.status_code == 404


def test_card_over_the_asgi_app(repo):
    path, keys_file, report, keys = repo
    with ServerThread(create_app(path, poll_seconds=0, api_keys=keys_file)) as server:
        _check_cards(server.url, report, keys)


def test_card_over_the_flask_blueprint(repo):
    path, keys_file, report, keys = repo
    app = Flask("cards")
    app.register_blueprint(flask_blueprint(path, poll_seconds=0, api_keys=keys_file))
    with FlaskThread(app) as server:
        _check_cards(server.url, report, keys)


@pytest.mark.parametrize(
    "accept, html",
    [
        (None, False),
        ("*/*", False),
        ("application/json", False),
        ("text/html", True),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),
        ("application/json, text/html", False),
        ("text/html;q=0.9, application/json", True),
    ],
)
def test_accept_header(accept, html):
    assert wants_html({} if accept is None else {"accept": accept}) is html


def test_console_files_and_status_over_flask(repo):
    path, keys_file, _, keys = repo
    app = Flask("console")
    app.register_blueprint(flask_blueprint(path, poll_seconds=0, api_keys=keys_file))
    with FlaskThread(app) as server, requests.Session() as s:
        page = s.get(server.url + "/ui", timeout=TIMEOUT)  # the page is open: it asks for the key itself
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"] and "http" not in page.text
        js = s.get(server.url + "/ui/console.js", timeout=TIMEOUT)
        assert (
            js.status_code == 200 and "Bearer" in js.text and js.headers["content-type"].startswith("text/javascript")
        )
        assert s.get(server.url + "/v1/console/models", timeout=TIMEOUT).status_code == 401
        h = _auth(keys["scoring"])
        for _ in range(3):
            r = s.post(
                server.url + "/v1/predict",
                json={"model_name": "credit", "input_data": credit_frame(2).values.tolist()},
                headers=h,
                timeout=TIMEOUT,
            )
            assert r.status_code == 200, r.text
        r = s.post(server.url + "/v1/predict", json={"model_name": "credit", "input_data": [[1.0]]}, headers=h)
        assert r.status_code == 400
        body = s.get(server.url + "/v1/console/models", headers=h, timeout=TIMEOUT).json()
        assert [m["name"] for m in body["models"]] == ["credit"]  # the scoped key sees its model only
        m = body["models"][0]
        assert m["versions"][0]["state"] == "AVAILABLE" and m["stats"]["requests"] == 4 and m["stats"]["errors"] == 1
        assert m["stats"]["latency_ms"]["p50"] is not None


def test_quantiles_from_histogram_buckets():
    buckets = [(0.001, 2.0), (0.01, 6.0), (0.1, 10.0), (float("inf"), 10.0)]
    assert quantile_from_buckets(0.5, buckets) == pytest.approx(0.001 + 0.009 * (5 - 2) / 4)
    assert quantile_from_buckets(0.1, buckets) == pytest.approx(0.001 * 1 / 2)
    assert quantile_from_buckets(0.99, buckets) == pytest.approx(0.01 + 0.09 * (9.9 - 6) / 4)
    assert quantile_from_buckets(0.99, [(0.1, 1.0), (float("inf"), 2.0)]) == 0.1
    assert quantile_from_buckets(0.5, [(0.1, 0.0), (float("inf"), 0.0)]) is None


def test_console_latency_percentiles_cover_the_last_window():
    """The console's percentiles come from the requests of the last WINDOW_SECONDS: the histogram
    now minus the newest snapshot at least that old (everything while the server is younger)."""
    from maasfin.serving.console import LatencyWindow

    w = LatencyWindow(window=60.0)
    slow = {"m": {0.01: 0.0, 1.0: 100.0, float("inf"): 100.0}}  # 100 requests of up to 1 s
    first = w.recent(0.0, slow)["m"]
    assert first == [(0.01, 0.0), (1.0, 100.0), (float("inf"), 100.0)]  # younger than the window
    assert quantile_from_buckets(0.5, first) > 0.01
    later = {"m": {0.01: 50.0, 1.0: 150.0, float("inf"): 150.0}}  # then 50 fast ones
    w.recent(30.0, later)
    recent = w.recent(90.0, later)["m"]  # the snapshot at t=30 is the newest one >= 60 s old
    assert recent == [(0.01, 0.0), (1.0, 0.0), (float("inf"), 0.0)]
    assert quantile_from_buckets(0.5, recent) is None  # no request in the last minute
    w2 = LatencyWindow(window=60.0)
    w2.recent(0.0, slow)
    got = w2.recent(61.0, later)["m"]  # only the 50 fast requests since t=0
    assert got == [(0.01, 50.0), (1.0, 50.0), (float("inf"), 50.0)]
    assert quantile_from_buckets(0.99, got) <= 0.01
    # a model that appears later counts from zero
    got = w2.recent(62.0, {**later, "new": {1.0: 3.0, float("inf"): 3.0}})
    assert got["new"] == [(1.0, 3.0), (float("inf"), 3.0)]
