"""Validation reports: numbers equal the functions they come from, canonical JSON, .maas round trip, escaping."""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import zipfile

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_curve

import maasfin
from maasfin import demo, fairness, metrics, reports
from maasfin.layers import Dense
from maasfin.saving import ModelFileError
from maasfin.utils import set_random_seed

META = {"owner": "Retail credit risk", "intended_use": "Unsecured consumer loans, applicants 18+", "seed": 7}


def _report(model, x, y, raw, **kw):
    return model.validation_report(x, y, groups=raw[["Marital", "Home"]], cutoff=0.3, metadata=META, **kw)


@pytest.fixture(scope="module")
def credit():
    set_random_seed(7)
    x_train, x_test, y_train, y_test, raw_test = demo.prepare_credit()
    model = demo.build_credit_model(x_train.shape[1])
    model.fit(x_train, y_train, epochs=5, batch_size=32, verbose=0)
    model.set_reason_codes({"Income": ("R01", "Income too low"), "Seniority": ("R02", "Short employment")})
    return model, x_test, y_test, raw_test


@pytest.fixture(scope="module")
def report(credit):
    model, x, y, raw = credit
    return _report(model, x, y, raw)


def _nan_to_none(v):
    return None if isinstance(v, float) and math.isnan(v) else v


def test_discrimination_equals_the_metric_functions(credit, report):
    model, x, y, _ = credit
    y = y.astype(np.float64)  # as the report reads the labels
    p = model.predict(x).ravel().astype(np.float64)
    d = report["discrimination"]
    assert d["auc"]["value"] == metrics.roc_auc_score(y, p)
    assert d["gini"]["value"] == metrics.gini(y, p)
    assert d["ks"]["value"] == metrics.ks_statistic(y, p)
    gains = metrics.gains_table(y, p)
    assert d["gains_table"] == [dict(zip(gains.columns, r)) for r in gains.itertuples(index=False, name=None)]
    fpr, tpr, _ = roc_curve(y, p, drop_intermediate=False)
    np.testing.assert_allclose(d["roc_curve"]["fpr"], fpr, atol=1e-15)
    np.testing.assert_allclose(d["roc_curve"]["tpr"], tpr, atol=1e-15)
    # the bootstrap, redone by hand: percentile intervals over resampled rows
    rng = np.random.default_rng(0)
    aucs, kss = [], []
    for _ in range(200):
        idx = rng.integers(0, y.size, y.size)
        aucs.append(metrics.roc_auc_score(y[idx], p[idx]))
        kss.append(metrics.ks_statistic(y[idx], p[idx]))
    assert d["n_bootstrap_used"] == 200 and d["seed"] == 0
    assert [d["auc"]["lower"], d["auc"]["upper"]] == np.quantile(aucs, [(1 - 0.95) / 2, (1 + 0.95) / 2]).tolist()
    assert [d["ks"]["lower"], d["ks"]["upper"]] == np.quantile(kss, [(1 - 0.95) / 2, (1 + 0.95) / 2]).tolist()
    assert d["gini"]["lower"] == pytest.approx(2 * d["auc"]["lower"] - 1, abs=1e-15)
    assert d["auc"]["lower"] < d["auc"]["value"] < d["auc"]["upper"]


def test_calibration_stability_and_fairness_equal_their_functions(credit, report):
    model, x, y, raw = credit
    p = model.predict(x).ravel().astype(np.float64)
    c = report["calibration"]
    assert c["brier"] == metrics.brier_score(y, p)
    assert c["ece"] == metrics.expected_calibration_error(y, p, n_bins=10)
    prob_true, prob_pred = metrics.calibration_curve(y, p, n_bins=10)
    assert c["curve"] == {"prob_true": prob_true.tolist(), "prob_pred": prob_pred.tolist()}
    hl = metrics.hosmer_lemeshow(y, p, groups=10)
    assert (c["hosmer_lemeshow"]["statistic"], c["hosmer_lemeshow"]["p_value"]) == (hl.statistic, hl.p_value)
    drift = model.drift(x)
    s = report["stability"]
    assert s["available"] and [f["feature"] for f in s["features"]] == list(drift.feature)
    assert [f["psi"] for f in s["features"]] == [_nan_to_none(v) for v in drift.psi]
    f = fairness.report(y, p, raw[["Marital", "Home"]], 0.3)
    rows = [{k: _nan_to_none(v) for k, v in zip(f.columns, r)} for r in f.itertuples(index=False, name=None)]
    assert report["fairness"] == {"cutoff": 0.3, "rows": rows}


def test_explanations_and_model_details(credit, report):
    model, x, y, _ = credit
    a = model.explain(x).to_numpy(np.float64)
    e = report["explanations"]
    assert e["available"] and e["rows"] == len(x)
    mean_abs = np.abs(a).mean(axis=0)
    assert [r["feature"] for r in e["ranking"]] == list(x.columns[np.argsort(-mean_abs, kind="stable")])
    np.testing.assert_allclose([r["mean_abs"] for r in e["ranking"]], np.sort(mean_abs)[::-1], rtol=1e-12)
    first = pd.Series([r[0]["feature"] for r in model.reasons(x) if r]).value_counts()
    assert {r["feature"]: r["top1"] for r in e["reason_codes"] if r["top1"]} == first.to_dict()
    income = next(r for r in e["reason_codes"] if r["feature"] == "Income")
    assert (income["code"], income["text"]) == ("R01", "Income too low")
    assert e["completeness"]["method"] == "exact" and e["completeness"]["max_abs_error"] < 0.05
    m = report["model"]
    assert m["n_params"] == model.count_params() and m["inputs"] == list(x.columns)
    assert [l["params"] for l in m["layers"]] == [l.count_params() for l in model.layers]
    assert m["history"]["epochs"] == 5 and m["history"]["logs"]["loss"] == model.history.history["loss"]
    assert m["seeds"] == {"bootstrap": 0, "training": 7} and m["versions"]["maasfin"] == maasfin.VERSION
    assert report["intended_use"]["owner"] == META["owner"] and report["intended_use"]["limitations"] is None
    xs = model.prepare_inputs(x)
    sha = hashlib.sha256(f"{xs[0].dtype.str}{xs[0].shape}".encode() + xs[0].tobytes()).hexdigest()
    assert report["data"]["x_sha256"] == sha and report["data"]["events"] == int(y.sum())


def test_same_inputs_and_seed_give_byte_identical_json(credit, report):
    model, x, y, raw = credit
    again = _report(model, x, y, raw)
    assert again.to_json() == report.to_json()
    other = _report(model, x, y, raw, seed=1)
    assert other.to_json() != report.to_json()
    assert reports.Report.from_json(report.to_json()) == report


def test_maas_round_trip(tmp_path, credit, report):
    model, x, *_ = credit
    path = tmp_path / "credit.maas"
    model.save(path, metadata=META, report=report)
    loaded = maasfin.load_model(path)
    assert loaded.report.to_json() == report.to_json() and loaded.metadata == META
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    again = maasfin.models.from_bytes(loaded.to_bytes())  # the report travels with the model
    assert again.report == report
    # a loaded model's own report defaults from its metadata
    assert loaded.validation_report(x, credit[2])["intended_use"]["owner"] == META["owner"]


def _hostile(blob: bytes, edit) -> bytes:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        m = {i.filename: zf.read(i) for i in zf.infolist()}
    m["report.json"] = edit(m["report.json"])
    meta = json.loads(m["metadata.json"])
    meta["sha256"]["report.json"] = hashlib.sha256(m["report.json"]).hexdigest()
    m["metadata.json"] = json.dumps(meta).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in m.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _json_edit(fn):
    def edit(raw):
        doc = json.loads(raw)
        fn(doc)
        return json.dumps(doc).encode()

    return edit


@pytest.mark.parametrize(
    "edit, match",
    [
        (
            _json_edit(lambda d: d["discrimination"]["auc"].update(value="0.9")),
            r"report.discrimination.auc.value must be",
        ),
        (_json_edit(lambda d: d["model"].update(extra=1)), r"report.model .*unknown field\(s\) \['extra'\]"),
        (_json_edit(lambda d: d.pop("calibration")), r"missing field\(s\) \['calibration'\]"),
        (_json_edit(lambda d: d.update(format_version=2)), "format version 2"),
        (_json_edit(lambda d: d["fairness"]["rows"][0].update(n=True)), r"fairness.rows\[0\].n must be an integer"),
        (_json_edit(lambda d: d.update(monotonicity=[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]])), "nested more than 16"),
        (lambda raw: raw.replace(b'"auc": {', b'"auc": {"value": NaN, ', 1), "NaN is not allowed"),
        (lambda raw: b"\xff" + raw, "not UTF-8"),
        (_json_edit(lambda d: d["discrimination"]["roc_curve"]["fpr"].pop()), "roc_curve.fpr and .tpr must be lists"),
        (_json_edit(lambda d: d["calibration"]["curve"]["prob_true"].__setitem__(0, 1.5)), r"must lie in \[0, 1\]"),
        (_json_edit(lambda d: d["discrimination"].update(gains_table=[])), "gains_table must have rows"),
    ],
)
def test_a_hostile_report_member_is_refused(credit, report, edit, match):
    model = credit[0]
    buf = io.BytesIO()
    blob = maasfin.models.from_bytes(model.to_bytes())
    blob.report = report
    raw = _hostile(blob.to_bytes(), edit)
    with pytest.raises(ModelFileError, match=match):
        maasfin.models.from_bytes(raw)
    del buf


def test_a_report_member_must_match_its_hash(credit, report):
    m = maasfin.models.from_bytes(credit[0].to_bytes())
    m.report = report
    with zipfile.ZipFile(io.BytesIO(m.to_bytes())) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    members["report.json"] = members["report.json"].replace(b'"owner": "Retail', b'"owner": "Other ', 1)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(ModelFileError, match="does not match its SHA-256"):
        maasfin.models.from_bytes(buf.getvalue())


def test_html_is_self_contained_and_escapes_names():
    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(size=(400, 3)), columns=["<script>alert(1)</script>", "income", "a&b"])
    y = (x.iloc[:, 0] + rng.normal(size=400) > 0.5).to_numpy(np.float64)
    set_random_seed(1)
    model = maasfin.Sequential([Dense(4, activation="tanh", input_dim=3), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y, epochs=3, verbose=0)
    groups = pd.Series(np.where(rng.uniform(size=400) < 0.5, "<b>g1</b>", "g2"), name="<i>attr</i>")
    owner = "<img src=x onerror=alert(1)>"
    r = model.validation_report(x, y, groups=groups, metadata={"owner": owner}, monotonicity={"<m>": "ok"})
    page = r.to_html()
    assert "<script" not in page and "<img" not in page and "<b>g1" not in page and "<i>attr" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;b&gt;g1&lt;/b&gt;" in page and "a&amp;b" in page and "&lt;m&gt;" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", page) and "<link" not in page
    assert page.count("<svg") == 5  # ROC, gains, calibration, PSI, attributions: all inline
    assert r.to_html() == page  # the page is deterministic too


def test_a_report_without_groups_or_drift_reference(credit):
    model, x, y, _ = credit
    fresh = demo.build_credit_model(x.shape[1])  # never fit: no drift reference, no history
    r = fresh.validation_report(x, y)
    assert r["fairness"] is None and r["model"]["history"] is None and r["monotonicity"] is None
    assert not r["stability"]["available"] and "drift reference" in r["stability"]["reason"]
    assert "No group columns" in r.to_html()


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"x": "drop"}, ValueError, "Seniority"),
        ({"y": "short"}, ValueError, "same length"),
        ({"y": "one_class"}, ValueError, "one class only"),
        ({"cutoff": 1.0}, ValueError, r"cutoff must be in \(0, 1\)"),
        ({"cutoff": -0.1, "groups": None}, ValueError, r"validation_report: cutoff must be in \(0, 1\)"),
        ({"seed": -1}, ValueError, "seed must be an integer"),
        ({"confidence": 1.0}, ValueError, r"confidence must be in \(0, 1\)"),
        ({"monotonicity": [1]}, TypeError, "monotonicity must be a dict"),
        ({"groups": "short"}, ValueError, "group column 'Marital' has shape"),
        ({"groups": None, "reference": "married"}, ValueError, "reference='married' was given without groups"),
    ],
)
def test_bad_report_input_is_named(credit, change, error, match):
    model, x, y, raw = credit
    kw = {"groups": raw[["Marital"]], "cutoff": 0.3}
    if change.pop("x", None):
        x = x.drop(columns=["Seniority"])
    how = change.pop("y", None)
    if how == "short":
        y = y[:-1]
    elif how == "one_class":
        y = np.zeros_like(y)
    if change.get("groups") == "short":
        change["groups"] = raw[["Marital"]].iloc[:-1]
    kw.update(change)
    with pytest.raises(error, match=match):
        model.validation_report(x, y, **kw)


def test_save_refuses_a_report_that_is_not_one(tmp_path, credit):
    with pytest.raises(TypeError, match="report must be a maasfin Report"):
        credit[0].save(tmp_path / "m.maas", report={"format": "maasfin.validation_report"})
