"""Time to build the validation report of the credit model on the bundled data's held-out applicants
(890 rows: 200 bootstrap resamples, integrated gradients of every row, fairness by marital status
and home ownership), to render its HTML page, and to save and load it in a `.maas` file.

    python benchmarks/bench_report.py [--repeats 5] [--html docs/governance-report.html]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--html", default=None, help="also write the page here")
    args = ap.parse_args()

    import maasfin as mf
    from maasfin.demo import build_credit_model, prepare_credit

    mf.utils.set_random_seed(7)
    x_train, x_test, y_train, y_test, raw_test = prepare_credit()
    model = build_credit_model(x_train.shape[1])
    model.fit(x_train, y_train, epochs=10, batch_size=32, verbose=0)
    meta = {"owner": "Retail credit risk", "intended_use": "Unsecured consumer loans", "seed": 7}

    def build():
        return model.validation_report(x_test, y_test, groups=raw_test[["Marital", "Home"]], cutoff=0.3, metadata=meta)

    def timed(fn):
        out, times = None, []
        for _ in range(args.repeats):
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
        return out, statistics.median(times)

    report, build_s = timed(build)
    same = build().to_json() == report.to_json()
    page, html_s = timed(report.to_html)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "credit.maas")
        _, save_s = timed(lambda: model.save(path, metadata=meta, report=report))
        loaded, load_s = timed(lambda: mf.load_model(path))
    assert loaded.report == report
    if args.html:
        report.to_html(args.html)
    print(f"rows {len(y_test)}, JSON {len(report.to_json()):,} bytes, HTML {len(page):,} bytes")
    print(f"build (median of {args.repeats}): {build_s:.3f} s; byte-identical rebuild: {same}")
    print(f"to_html: {html_s:.3f} s; save with report: {save_s * 1e3:.1f} ms; load: {load_s * 1e3:.1f} ms")
    d = report["discrimination"]
    print(f"AUC {d['auc']['value']:.4f} [{d['auc']['lower']:.4f}, {d['auc']['upper']:.4f}]  "
          f"KS {d['ks']['value']:.4f}  Brier {report['calibration']['brier']:.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
