"""The web console and the HTML report in real headless Chromium (Debian's chromium + chromedriver, Selenium).

Pages must load without console errors and without requests anywhere but the server; the
applicant form's score and reasons must equal POST /v1/explain; drift charts must render after
traffic; a key scoped to one model must not see another; a feature named `<script>` must render
as text. Screenshots go to the test's directory, and also to $MAASFIN_SCREENSHOTS when set.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import requests
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from serving_support import FEATURES, ServerThread, credit_frame, credit_model, put

import maasfin
from maasfin.layers import Dense
from maasfin.serving import add_key, create_app
from maasfin.utils import set_random_seed

TIMEOUT = 60
WAIT = 30


@pytest.fixture(scope="module")
def browser():
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver_path, "the browser tests need Debian's chromium and chromium-driver (apt-get install)"
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    driver.set_page_load_timeout(TIMEOUT)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("console")
    repo = str(root / "repo")
    model = credit_model(seed=3, epochs=2)
    model.set_reason_codes({"income": ("R01", "Low income"), "debt_ratio": ("R02", "High debt ratio")})
    df = credit_frame(300, seed=9)
    y = ((df["income"] - df["debt_ratio"]) > 0).to_numpy(np.float64)
    model.report = model.validation_report(df, y, metadata={"owner": "Risk"}, explain_rows=100, n_bootstrap=20)
    put(repo, "credit", 1, model)
    put(repo, "fraud", 1, credit_model(seed=5, epochs=1))
    keys = root / "keys.json"
    scoring = add_key(keys, "scoring", ["credit"])
    ops = add_key(keys, "ops", ["*"])
    with ServerThread(create_app(repo, poll_seconds=0, api_keys=str(keys), drift_window=2000)) as s:
        yield s.url, {"scoring": scoring, "ops": ops}


def _shot(driver, tmp_path, name):
    driver.save_screenshot(str(tmp_path / f"{name}.png"))
    out = os.environ.get("MAASFIN_SCREENSHOTS")
    if out:
        os.makedirs(out, exist_ok=True)
        driver.save_screenshot(os.path.join(out, f"{name}.png"))


def _clean_logs(driver, allowed_prefixes):
    """(console errors, request URLs outside `allowed_prefixes`) since the last call."""
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    outside = [u for u in urls if not u.startswith(tuple(allowed_prefixes))]
    return errors, outside


def _connect(driver, url, key):
    driver.get(url + "/ui")
    driver.find_element(By.ID, "key").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#key-form button").click()
    WebDriverWait(driver, WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#models tbody tr"))
    return [tr.get_attribute("data-model") for tr in driver.find_elements(By.CSS_SELECTOR, "#models tbody tr")]


def test_a_scoped_key_sees_only_its_model(browser, server, tmp_path):
    url, keys = server
    browser.get_log("browser"), browser.get_log("performance")
    assert _connect(browser, url, keys["scoring"]) == ["credit"]
    _shot(browser, tmp_path, "console-scoped")
    errors, outside = _clean_logs(browser, [url])
    assert errors == [] and outside == []
    # the key is sent as a header only: the page's own URL never carries it
    assert keys["scoring"] not in browser.current_url


def test_the_applicant_form_scores_like_post_explain(browser, server, tmp_path):
    url, keys = server
    assert _connect(browser, url, keys["scoring"]) == ["credit"]
    browser.find_element(By.CSS_SELECTOR, "#models tbody tr").click()
    WebDriverWait(browser, WAIT).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#applicant input")) == 5)
    record = {"income": -1.25, "debt_ratio": 0.8, "age": 0.1, "utilisation": 1.5, "late_payments": 2.0}
    for name, value in record.items():
        field = browser.find_element(By.NAME, name)
        field.clear()
        field.send_keys(str(value))
    browser.find_element(By.CSS_SELECTOR, "#applicant button").click()
    WebDriverWait(browser, WAIT).until(lambda d: d.find_elements(By.ID, "score-value"))
    shown = float(browser.find_element(By.ID, "score-value").get_attribute("data-score"))
    reasons = [
        (li.get_attribute("data-feature"), float(li.get_attribute("data-contribution")))
        for li in browser.find_elements(By.CSS_SELECTOR, "#reasons li")
    ]
    r = requests.post(
        url + "/v1/explain",
        json={"model_name": "credit", "input_data": [record]},
        headers={"Authorization": f"Bearer {keys['scoring']}"},
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    p = body["predictions"][0]
    assert shown == (p[0] if isinstance(p, list) else p)
    assert reasons == [(x["feature"], x["contribution"]) for x in body["reasons"][0]] and reasons
    assert "R01" in browser.find_element(By.ID, "reasons").text or "income" not in dict(reasons)
    # the stored report is shown in its sandboxed frame
    browser.switch_to.frame("report")
    WebDriverWait(browser, WAIT).until(lambda d: "Validation report" in d.find_element(By.TAG_NAME, "h1").text)
    browser.switch_to.default_content()
    _shot(browser, tmp_path, "console-applicant")
    errors, outside = _clean_logs(browser, [url, "about:"])
    assert errors == [] and outside == []


def test_drift_charts_and_live_stats_render_after_traffic(browser, server, tmp_path):
    url, keys = server
    auth = {"Authorization": f"Bearer {keys['ops']}"}
    shifted = credit_frame(400, seed=21)
    shifted["income"] += 2.0
    for i in range(0, 400, 100):
        r = requests.post(
            url + "/v1/predict",
            json={"model_name": "credit", "input_data": shifted.iloc[i : i + 100].values.tolist()},
            headers=auth,
            timeout=TIMEOUT,
        )
        assert r.status_code == 200, r.text
    assert sorted(_connect(browser, url, keys["ops"])) == ["credit", "fraud"]
    row = browser.find_element(By.CSS_SELECTOR, "#models tbody tr[data-model='credit']")
    assert row.find_elements(By.TAG_NAME, "td")[5].text != "–"  # p50 latency after traffic
    row.click()
    WebDriverWait(browser, WAIT).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#drift rect")) == 6)
    bars = {
        b.get_attribute("data-feature"): b.get_attribute("data-psi")
        for b in browser.find_elements(By.CSS_SELECTOR, "#drift rect")
    }
    drift = requests.get(url + "/v1/models/credit/drift", headers=auth, timeout=TIMEOUT).json()
    assert list(bars) == FEATURES + ["score"]
    for f in drift["features"]:
        assert float(bars[f["feature"]]) == pytest.approx(f["psi"], rel=1e-12)
    assert float(bars["income"]) > 0.25  # the shifted feature
    _shot(browser, tmp_path, "console-drift")
    errors, outside = _clean_logs(browser, [url, "about:"])
    assert errors == [] and outside == []


def test_the_html_report_renders_a_script_feature_as_text(browser, tmp_path):
    rng = np.random.default_rng(3)
    import pandas as pd

    x = pd.DataFrame(rng.normal(size=(300, 2)), columns=["<script>alert(1)</script>", "income"])
    y = (x.iloc[:, 0] + rng.normal(size=300) > 0.3).to_numpy(np.float64)
    set_random_seed(1)
    model = maasfin.Sequential([Dense(4, activation="tanh", input_dim=2), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y, epochs=2, verbose=0)
    groups = pd.Series(np.where(rng.uniform(size=300) < 0.5, "<b>a</b>", "b"), name="group")
    path = tmp_path / "report.html"
    model.validation_report(x, y, groups=groups, explain_rows=100, n_bootstrap=20).to_html(path)
    browser.get_log("browser"), browser.get_log("performance")
    browser.get(path.as_uri())
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "<script>alert(1)</script>" in text and "<b>a</b>" in text
    assert browser.find_elements(By.TAG_NAME, "script") == [] and browser.find_elements(By.TAG_NAME, "b") == []
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg")) == 5
    _shot(browser, tmp_path, "report")
    errors, outside = _clean_logs(browser, [path.as_uri()])
    assert errors == [] and outside == []
