"""The HTML page of a validation report: Jinja2 (autoescaped) and inline SVG charts from matplotlib.

One self-contained page: CSS inline, charts as inline SVG (their text XML-escaped), no scripts, no
fonts or images fetched. Every string from the report (feature, group and model names, metadata)
goes through Jinja2's autoescaping, so a feature named `<script>` shows as text.
"""

from __future__ import annotations

import io
import json
import threading

__all__ = ["render", "EXTRA"]

EXTRA = 'pip install "maasfin[report]"'
# Text stays text (<text>, XML-escaped by matplotlib): smaller and faster than glyph paths.
_SVG_RC = {"svg.hashsalt": "maasfin-report", "svg.fonttype": "none", "font.size": 9}
_LOCK = threading.Lock()  # matplotlib's rc_context changes process-wide settings: one page at a time


def _require():
    try:
        import jinja2
        import matplotlib
    except ImportError as e:
        raise ImportError(f"Report.to_html needs Jinja2 and matplotlib ({e.name} is missing): {EXTRA}") from None
    return jinja2, matplotlib


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _figure(matplotlib, width: float = 4.2, height: float = 3.2):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=96)
    return fig, fig.add_subplot()


def _charts(data: dict) -> dict:
    _, matplotlib = _require()
    charts = {}
    with matplotlib.rc_context(_SVG_RC):
        d = data["discrimination"]
        fig, ax = _figure(matplotlib)
        ax.plot(d["roc_curve"]["fpr"], d["roc_curve"]["tpr"], color="#1f5fa8", lw=1.5)
        ax.plot([0, 1], [0, 1], color="#999999", lw=0.8, ls="--")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC (AUC {d['auc']['value']:.3f})")
        charts["roc"] = _svg(fig)

        g = d["gains_table"]
        fig, ax = _figure(matplotlib)
        share = [0.0] + [sum(r["count"] for r in g[: k + 1]) / sum(r["count"] for r in g) for k in range(len(g))]
        ax.plot(share, [0.0] + [r["cum_bads_pct"] for r in g], marker="o", ms=3, color="#b03a2e", label="bads")
        ax.plot(share, [0.0] + [r["cum_goods_pct"] for r in g], marker="o", ms=3, color="#1e8449", label="goods")
        ax.set(xlabel="share of applicants (riskiest first)", ylabel="cumulative share", title="Gains")
        ax.legend(loc="lower right")
        charts["gains"] = _svg(fig)

        c = data["calibration"]
        fig, ax = _figure(matplotlib)
        ax.plot([0, 1], [0, 1], color="#999999", lw=0.8, ls="--")
        ax.plot(c["curve"]["prob_pred"], c["curve"]["prob_true"], marker="o", ms=3, color="#1f5fa8")
        ax.set(xlabel="mean predicted probability", ylabel="observed event rate", title="Calibration")
        charts["calibration"] = _svg(fig)

        s = data["stability"]
        if s["available"] and s["features"]:
            feats = s["features"]
            fig, ax = _figure(matplotlib, 4.8, 0.8 + 0.22 * len(feats))
            ax.barh(range(len(feats)), [f["psi"] or 0.0 for f in feats], color="#7d3c98")
            ax.set_yticks(range(len(feats)), [f["feature"] for f in feats])
            ax.invert_yaxis()
            ax.axvline(0.10, color="#d4ac0d", lw=0.8)
            ax.axvline(0.25, color="#b03a2e", lw=0.8)
            ax.set(xlabel="PSI", title="Population stability")
            charts["psi"] = _svg(fig)

        e = data["explanations"]
        if e["available"] and e["ranking"]:
            top = e["ranking"][:15]
            fig, ax = _figure(matplotlib, 4.8, 0.8 + 0.22 * len(top))
            ax.barh(range(len(top)), [r["mean_abs"] for r in top], color="#1f5fa8")
            ax.set_yticks(range(len(top)), [r["feature"] for r in top])
            ax.invert_yaxis()
            ax.set(xlabel="mean |attribution|", title="Global attribution ranking")
            charts["attributions"] = _svg(fig)
    return charts


def _fmt(v, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def render(data: dict) -> str:
    """The page of a checked report document (`Report.data`)."""
    jinja2, _ = _require()
    from markupsafe import Markup

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("maasfin.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = _fmt
    with _LOCK:
        charts = {k: Markup(v) for k, v in _charts(data).items()}  # matplotlib's own, XML-escaped SVG
    monotonicity = None if data["monotonicity"] is None else json.dumps(data["monotonicity"], indent=1)
    return env.get_template("validation.html.j2").render(r=data, charts=charts, monotonicity=monotonicity)
