"""notebooks/credit_scoring.ipynb runs end to end in a Jupyter kernel (nbclient + ipykernel) on this
Python and this maasfin install, and its cells show what the notebook's text promises."""

import html
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import maasfin

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "credit_scoring.ipynb"
# Appended to the notebook: facts from inside the kernel.
CHECK = """import json, sys
print(json.dumps({"executable": sys.executable, "maasfin": mf.__file__, "epochs": len(history.epoch),
                  "loss": history.history["loss"], "val_loss": history.history["val_loss"]}))"""


def _text(cell) -> str:
    """stdout and text/plain results of a code cell."""
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream" and out.name == "stdout":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def _number(text: str, label: str) -> float:
    m = re.search(re.escape(label) + r"\s+([-+0-9.eE]+)", text)
    assert m, f"no {label!r} in {text!r}"
    return float(m.group(1))


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    nb = nbformat.read(NOTEBOOK, as_version=4)  # validates the notebook (cell ids included)
    nb.cells.append(nbformat.v4.new_code_cell(CHECK, id="test-interpreter"))
    client = NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        allow_errors=False,
        resources={"metadata": {"path": str(tmp_path_factory.mktemp("notebook"))}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    cells = {cell.get("id"): cell for cell in nb.cells}
    cells["widget-state"] = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    return cells


def test_notebook_runs_in_this_interpreter_with_this_maasfin_and_trains(executed):
    facts = json.loads(_text(executed["test-interpreter"]))
    assert facts["executable"] == sys.executable and facts["maasfin"] == maasfin.__file__
    # EarlyStopping(patience=3) may stop before the 10 epochs; the loss must have come down.
    assert 4 <= facts["epochs"] <= 10 and len(facts["val_loss"]) == facts["epochs"]
    assert facts["loss"][-1] < facts["loss"][0] - 0.05 and min(facts["val_loss"]) < 0.5


def test_every_code_cell_ran_without_errors_or_warnings(executed):
    code = [c for c in executed.values() if c.get("cell_type") == "code"]
    assert len(code) >= 9 and all(c.execution_count for c in code)
    for cell in code:
        for out in cell.outputs:
            assert out.output_type != "error", (cell.id, out.get("ename"), out.get("evalue"))
            if out.output_type == "stream" and out.name == "stderr":
                assert not re.search(r"warn|error|traceback", out.text, re.I), (cell.id, out.text)


def test_notebook_results(executed):
    assert "(3564, 30), (890, 30)" in _text(executed["c3"])  # training/test split of the 4454 applicants
    summary = _text(executed["c4"])
    assert "Total params: 1,025" in summary and "dropout (Dropout)" in summary
    assert "Epoch 1/10" in _text(executed["c5"])
    # The progress bars are tqdm widgets in a notebook: their final text is in the widget state.
    bars = [
        html.unescape(str(m["state"].get("value", ""))).replace("\u2007", " ")
        for m in executed["widget-state"].get("state", {}).values()
    ]
    assert sum("90/90" in b for b in bars) >= 4 and sum("val_loss: " in b for b in bars) >= 4
    plot = executed["c6"]
    assert any("image/png" in out.get("data", {}) for out in plot.outputs)  # the history plot (matplotlib)
    scores = _text(executed["c7"])
    auc, gini, ks = _number(scores, "ROC AUC"), _number(scores, "Gini"), _number(scores, "KS")
    assert 0.78 < auc < 0.9 and gini == pytest.approx(2 * auc - 1, abs=1e-9) and 0.35 < ks < 0.7
    assert _text(executed["c9"]).strip() == "True"  # columns matched by name
    assert 0.8 < _number(_text(executed["c11"]), "ROC AUC on raw test rows") < 0.95
    probs = [float(v) for v in re.findall(r"\[([0-9.eE+-]+)\]", _text(executed["c13"]))]
    assert len(probs) == 2 and all(0.0 < p < 1.0 for p in probs)
    roc = _text(executed["roc"])
    gini, ks = _number(roc, "Gini"), _number(roc, "KS")
    assert 0.6 < gini < 0.9 and 0.4 < ks < 0.7
    assert any("image/png" in out.get("data", {}) for out in executed["roc"].outputs)  # the ROC curve
    reasons = _text(executed["c15"]).splitlines()
    assert _number(reasons[0], "probability of default") > 0.5 and 1 <= len(reasons) - 1 <= 4
    assert all(float(line.split()[2]) > 0 for line in reasons[1:])  # only adverse contributions
    drift = _text(executed["c17"])
    assert re.search(r"Income\s+[0-9.]+\s+act", drift)
    assert any("image/png" in out.get("data", {}) for out in executed["c17"].outputs)
    report = _text(executed["report"])
    assert re.search(r"married\s+\d+\s+[0-9.]+\s+1\.0+\s+False", report)  # the reference group
    low, high = (float(v) for v in re.search(r"ROC AUC [0-9.]+ \[([0-9.]+), ([0-9.]+)\]", report).groups())
    assert low < _number(scores, "ROC AUC") < high and "report stored: True" in report


def test_featurespace_reasons_name_raw_columns(executed):
    lines = _text(executed["raw-reasons"]).splitlines()
    assert _number(lines[0], "probability of default") > 0.5
    raw = {
        "Seniority",
        "Home",
        "Time",
        "Age",
        "Marital",
        "Records",
        "Job",
        "Expenses",
        "Income",
        "Assets",
        "Debt",
        "Amount",
        "Price",
    }
    reasons = lines[1:-1]
    assert 1 <= len(reasons) <= 4
    for line in reasons:
        code, feature, contribution = line.split()[:3]
        assert feature in raw and float(contribution) > 0
    assert lines[-1] == "columns explained: 13"


def test_default_model_cells_show_calibrated_pds_plots_and_gains(executed):
    text = _text(executed["default-model"])
    assert _number(text, "ROC AUC") > 0.83
    assert _number(text, "ECE") < 0.05  # calibrated on out-of-fold predictions
    observed = _number(text, "observed default rate")
    assert abs(_number(text, "mean PD") - observed) < 0.03
    assert any("image/png" in out.get("data", {}) for out in executed["default-plots"].outputs)
    gains = _text(executed["default-gains"])
    assert _number(gains, "KS") == pytest.approx(_number(gains, "ks_statistic"), abs=1e-6)
    rows = [line.split() for line in gains.splitlines()[2:] if line.strip()]
    assert [int(r[1]) for r in rows] == list(range(1, 11))  # ten deciles, riskiest first
    rates = [float(r[4]) for r in rows]
    assert rates[0] > 3 * rates[-1]  # the riskiest decile defaults far more often than the safest
