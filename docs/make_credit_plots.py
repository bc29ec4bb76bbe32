"""Makes the credit plots of docs/credit.md (docs/images/credit_*.png) with maasfin.credit.default_model.

    python docs/make_credit_plots.py          # needs matplotlib and scikit-learn ("maasfin[test]")

The bundled credit data is split 70% / 30% (stratified, random_state=0); default_model trains on the
70% (seed 0) and every number and plot is on the 30% it never saw. "Before calibration" is the
towers' average, recovered exactly from the calibrated PD by inverting the model's Platt layer.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import maasfin as mf  # noqa: E402
from maasfin import metrics  # noqa: E402
from maasfin.credit import default_model  # noqa: E402

IMAGES = Path(__file__).resolve().parent / "images"


def before_calibration(model, p):
    """The probability that entered the model's last (Platt) layer: p = sigmoid(a * logit(q) + b)."""
    params = model.layers[-1].parameters
    a, b = float(params["slope"][0]), float(params["intercept"][0])
    p = np.clip(np.asarray(p, np.float64), 1e-12, 1 - 1e-12)
    return 1.0 / (1.0 + np.exp(-((np.log(p / (1 - p)) - b) / a)))


def main():
    df = mf.datasets.load_credit()
    train, test = train_test_split(df, test_size=0.3, stratify=df["Status"], random_state=0)
    model = default_model(train, target="Status", positive="bad", seed=0)
    y = (test["Status"] == "bad").to_numpy(np.float64)
    p = model.predict(test.drop(columns="Status"), verbose=0).ravel().astype(np.float64)
    q = before_calibration(model, p)
    print(f"held-out rows {len(y)}, default rate {y.mean():.4f}")
    for name, probs in (("towers' average (before)", q), ("calibrated (Platt)", p)):
        print(
            f"{name:26s} ROC AUC {metrics.roc_auc_score(y, probs):.4f}  KS {metrics.ks_statistic(y, probs):.4f}  "
            f"Brier {metrics.brier_score(y, probs):.4f}  ECE(10 quantile bins) "
            f"{metrics.expected_calibration_error(y, probs, n_bins=10, strategy='quantile'):.4f}  "
            f"mean PD {probs.mean():.4f}"
        )
    table = metrics.gains_table(y, p, n_bins=10)
    params = model.layers[-1].parameters
    print(f"Platt layer: slope {params['slope'][0]:.4f}, intercept {params['intercept'][0]:.4f}")
    print(table.round(3).to_string(index=False))

    IMAGES.mkdir(exist_ok=True)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect calibration")
    for name, probs, style in (("before calibration", q, "s--"), ("default_model (Platt)", p, "o-")):
        observed, predicted = metrics.calibration_curve(y, probs, n_bins=10, strategy="quantile")
        ax.plot(predicted, observed, style, label=name)
    ax.set(xlabel="mean predicted PD", ylabel="observed default rate", title="Calibration curve (held-out 30%)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(IMAGES / "credit_calibration.png", dpi=100)

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    share = np.r_[0, np.cumsum(table["count"]) / table["count"].sum()]
    left.plot(share, np.r_[0, table["cum_bads_pct"]], "o-", label="default_model")
    left.plot([0, 1], [0, 1], ":", color="grey", label="random")
    left.set(xlabel="share of applicants (highest PD first)", ylabel="share of defaults captured", title="Gains chart")
    left.legend(loc="lower right")
    right.bar(table["bin"], table["bad_rate"], color="tab:red")
    right.axhline(y.mean(), ls=":", color="grey", label="portfolio default rate")
    right.set(xlabel="decile (1 = highest PD)", ylabel="observed default rate", title="Default rate by decile")
    right.set_xticks(table["bin"])
    right.legend()
    fig.tight_layout()
    fig.savefig(IMAGES / "credit_gains.png", dpi=100)
    print(f"wrote {IMAGES / 'credit_calibration.png'} and {IMAGES / 'credit_gains.png'}")


if __name__ == "__main__":
    main()
