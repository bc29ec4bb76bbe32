"""WoEEncoding: a feature's weight of evidence, with bins learned from a binary target (optimal binning).

`adapt(x, y)` bins one numeric or string feature (layers/preprocessing/binning.py: tree prebinning,
then the IV-maximal merge of adjacent prebins under the trend, size and count constraints), and the
C++ core (cpp/src/layers/woe_encoding.cpp) maps each value to the WoE of its bin inside the model.
A numeric feature is a graph input (NaN allowed: the Missing bin); a string feature is converted to
indices at the data boundary (StringTable) like StringLookup, and the graph maps indices to WoE.
The learned binning (splits or category groups and the counts per bin) is in the layer's config, so
`binning_table()` works after loading, and the values the core reads are non-trainable weights.
"""

from __future__ import annotations

import numpy as np

from maasfin import _core
from maasfin.data import is_frame, is_series, pd
from maasfin.layers.base import KerasTensor
from maasfin.layers.preprocessing import binning as B
from maasfin.layers.preprocessing.base import PreprocessingLayer, int_arg, numeric_2d, object_array

__all__ = ["WoEEncoding", "MISSING_TOKEN"]

#: The token the string boundary uses for a missing category (index 0; never a real category).
MISSING_TOKEN = "\x00[missing]"
_MISSING_OPTIONS = ("separate",)
_CATEGORICAL_TRENDS = ("auto", "ascending", None)


def _is_string_column(x) -> bool:
    if is_series(x) or is_frame(x):
        frame = x.to_frame() if is_series(x) else x
        return any(
            not (pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt)) for dt in frame.dtypes
        ) and any(isinstance(v, str) for v in frame.to_numpy(dtype=object).reshape(-1))
    a = np.asarray(x, dtype=object) if isinstance(x, (list, tuple)) else np.asarray(x)
    if a.dtype.kind in "US":
        return True
    return a.dtype == object and any(isinstance(v, (str, bytes)) for v in a.reshape(-1))


class WoEEncoding(PreprocessingLayer):
    """Encodes one feature (input shape (1,)) as the weight of evidence of its bin.

    WoE = ln(non-event share / event share) of the bin (optbinning's sign: bins with a high event
    rate get a negative WoE); 0 for a bin without events or without non-events and for categories
    not seen by `adapt`. Arguments (optbinning's `OptimalBinning` names and defaults):
    - max_n_bins: at most this many bins (None: no limit); min_bin_size: each bin holds at least this
      fraction of all rows (0 < min_bin_size <= 0.5).
    - monotonic_trend: of the event rate over the numeric value: "ascending", "descending", "peak",
      "valley", None (no constraint) or "auto" (the better of ascending and descending by IV).
      String categories are ordered by event rate, so their bins ascend by construction ("auto",
      "ascending" or None).
    - special_values: values (numbers, or strings for a string feature) kept in their own Special bin.
    - missing="separate": NaN/None go to the Missing bin.
    - max_n_prebins, min_prebin_size: the prebinning tree (20 leaves of at least 5% of the rows).
    """

    _accepts_missing = True
    _takes_strings = True

    def __init__(
        self,
        max_n_bins=None,
        min_bin_size=0.05,
        monotonic_trend="auto",
        special_values=None,
        missing="separate",
        max_n_prebins=20,
        min_prebin_size=0.05,
        binning_kind=None,
        bin_splits=None,
        bin_categories=None,
        bin_nonevent=None,
        bin_event=None,
        bin_trend=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        where = self._where
        self.max_n_bins = int_arg(max_n_bins, where, "max_n_bins", 1, optional=True)
        self.max_n_prebins = int_arg(max_n_prebins, where, "max_n_prebins", 2)
        for arg, v in (("min_bin_size", min_bin_size), ("min_prebin_size", min_prebin_size)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 0.5:
                raise ValueError(f"{where}: {arg} must be a fraction of the rows in (0, 0.5], got {v!r}")
        self.min_bin_size, self.min_prebin_size = float(min_bin_size), float(min_prebin_size)
        if monotonic_trend not in B.TRENDS:
            raise ValueError(f"{where}: monotonic_trend must be one of {list(B.TRENDS)}, got {monotonic_trend!r}")
        self.monotonic_trend = monotonic_trend
        if missing not in _MISSING_OPTIONS:
            raise ValueError(f"{where}: missing must be one of {list(_MISSING_OPTIONS)}, got {missing!r}")
        self.missing = missing
        self.special_values = self._specials(special_values)
        # The learned binning (config fields bin_*, written by adapt): kind, trend, splits or
        # category groups, and non-event/event counts per row of the binning table.
        self.binning = None
        if binning_kind is not None:
            self.binning = self._checked_binning(
                {
                    "kind": binning_kind,
                    "trend": bin_trend,
                    "splits": bin_splits,
                    "categories": bin_categories,
                    "nonevent": bin_nonevent,
                    "event": bin_event,
                }
            )
        self._table = None
        if self.binning is not None and self.binning["kind"] == "categorical":
            self._make_table()

    # -- arguments and state -----------------------------------------------------------------------
    def _specials(self, values) -> list | None:
        if values is None:
            return None
        vals = list(np.asarray(values, dtype=object).reshape(-1))
        if not vals:
            return None
        if all(isinstance(v, str) for v in vals):
            return sorted(set(vals))
        try:
            nums = [float(np.float32(v)) for v in vals if not isinstance(v, (bool, str))]
        except (TypeError, ValueError):
            nums = []
        if len(nums) != len(vals) or not np.all(np.isfinite(nums)):
            raise ValueError(f"{self._where}: special_values must be all finite numbers or all strings, got {vals}")
        return sorted(set(nums))

    def _checked_binning(self, b) -> dict:
        where = self._where
        if not isinstance(b, dict) or b.get("kind") not in ("numeric", "categorical"):
            raise ValueError(f"{where}: binning_kind must be 'numeric' or 'categorical'")
        if b.get("trend") not in ("ascending", "descending", "peak", "valley", None):
            raise ValueError(f"{where}: bin_trend must be a resolved trend, got {b.get('trend')!r}")
        nonevent, event = (np.asarray(b.get(k, []), dtype=np.float64) for k in ("nonevent", "event"))
        groups = b.get("splits") if b["kind"] == "numeric" else b.get("categories")
        if not isinstance(groups, list):
            raise ValueError(f"{where}: binning needs {'bin_splits' if b['kind'] == 'numeric' else 'bin_categories'}")
        n_bins = len(groups) + 1 if b["kind"] == "numeric" else len(groups)
        if nonevent.shape != (n_bins + 2,) or event.shape != (n_bins + 2,) or (nonevent < 0).any() or (event < 0).any():
            raise ValueError(f"{where}: binning counts must be {n_bins + 2} non-negative numbers each")
        if b["kind"] == "numeric":
            s = np.asarray(groups, dtype=np.float64)
            if not np.all(np.isfinite(s)) or np.any(np.diff(s) <= 0):
                raise ValueError(f"{where}: binning splits must be finite and strictly ascending")
        elif not all(isinstance(g, list) and all(isinstance(c, str) for c in g) for g in groups):
            raise ValueError(f"{where}: binning categories must be lists of strings")
        return {
            "kind": b["kind"],
            "trend": b.get("trend"),
            ("splits" if b["kind"] == "numeric" else "categories"): groups,
            "nonevent": nonevent.tolist(),
            "event": event.tolist(),
        }

    def _require_adapted(self) -> dict:
        if self.binning is None:
            raise ValueError(f"{self._where} has no bins yet: call adapt(x, y) with the feature and a 0/1 target")
        return self.binning

    def _vocabulary(self) -> list[str]:
        return [c for g in self.binning["categories"] for c in g] + list(
            s for s in (self.special_values or []) if isinstance(s, str)
        )

    def _make_table(self) -> None:
        self._table = _core.StringTable(self._vocabulary(), 1, MISSING_TOKEN, True, self._where)

    def woe(self) -> np.ndarray:
        """WoE of the binning table's rows (bins, then Special, then Missing), as the core reads them (float32)."""
        b = self._require_adapted()
        woe, _ = B.woe_iv(np.asarray(b["nonevent"]), np.asarray(b["event"]))
        return woe.astype(np.float32)

    def _state(self, shapes):
        b = self._require_adapted()
        woe = self.woe()
        if b["kind"] == "numeric":
            out = {"woe": woe}
            if b["splits"]:
                out["bin_boundaries"] = np.asarray(b["splits"])
            if self.special_values:
                out["special_values"] = np.asarray(self.special_values)
            return out
        # index 0: missing, 1: unseen category (WoE 0), then the vocabulary
        per_token = [woe[i] for i, g in enumerate(b["categories"]) for _ in g]
        per_token += [woe[-2]] * (len(self._vocabulary()) - len(per_token))
        return {"woe": np.asarray([woe[-1], 0.0] + per_token)}

    def _make_core(self):
        b = self._require_adapted()
        if b["kind"] == "categorical":
            return _core.WoEEncoding(0, 0, 2 + len(self._vocabulary()))
        return _core.WoEEncoding(len(b["splits"]), len(self.special_values or []), 0)

    # -- inputs ------------------------------------------------------------------------------------
    def __call__(self, inputs, **kwargs):
        t = inputs[0] if isinstance(inputs, (list, tuple)) and inputs else inputs
        if isinstance(t, KerasTensor) and self.binning is not None:
            categorical = self.binning["kind"] == "categorical"
            if (t.dtype == "string") != categorical:
                raise TypeError(
                    f"{self._where} was adapted on a {'string' if categorical else 'numeric'} feature but is "
                    f"applied to the {t.dtype} input {t.name!r}"
                )
        return super().__call__(inputs, **kwargs)

    def _requires_strings(self) -> bool:
        return self.binning is not None and self.binning["kind"] == "categorical"

    def _encode(self, column: np.ndarray, what: str) -> np.ndarray:
        """Indices (float32) of an object array of strings/None/NaN: the data-boundary conversion."""
        self._require_adapted()
        if self._table is None:
            raise ValueError(f"{self._where} encodes a numeric feature; it takes numbers, not strings")
        return self._table.lookup(column, what)

    def _eager_input(self, data) -> np.ndarray:
        if self._require_adapted()["kind"] == "categorical":
            a = object_array(data, self._where)
            return self._encode(a.reshape(-1, 1), self._where)
        return super()._eager_input(data)

    # -- adapt -------------------------------------------------------------------------------------
    def _target(self, y, n: int) -> np.ndarray:
        where = self._where
        if y is None:
            raise ValueError(f"{where}: adapt needs the target y (0/1) beside the feature")
        t = y.to_numpy(dtype=np.float64, na_value=np.nan) if is_series(y) else np.asarray(y, dtype=np.float64)
        t = t.reshape(-1)
        if t.size != n:
            raise ValueError(f"{where}: the feature has {n} rows but the target y has {t.size}")
        if np.isnan(t).any():
            raise ValueError(f"{where}: the target y has NaN at row {int(np.flatnonzero(np.isnan(t))[0])}")
        if not np.isin(t, (0.0, 1.0)).all():
            raise ValueError(f"{where}: the target y must be 0/1, got {np.unique(t)[:5].tolist()}")
        if t.min() == t.max():
            raise ValueError(f"{where}: the target y has one class only ({int(t[0])}); WoE needs events and non-events")
        return t

    def adapt(self, data, y=None, batch_size=None, steps=None):
        """Learns the bins of one feature `data` (numbers or strings, one value per row) against the 0/1 target `y`."""
        if self._graph is not None:
            raise ValueError(f"{self._where} is already part of a built model; adapt it before building the model")
        categorical = _is_string_column(data)
        if categorical:
            a = object_array(data, self._where).reshape(-1)
            t = self._target(y, a.size)
            self.binning = self._adapt_categorical(a, t)
            self._make_table()
        else:
            x = numeric_2d(data, self._where)
            if x.shape[1] != 1:
                raise ValueError(f"{self._where} encodes one feature; adapt data has shape {x.shape}")
            t = self._target(y, x.shape[0])
            self.binning = self._adapt_numeric(x[:, 0].astype(np.float32), t)
            self._table = None
        return self

    def _min_sizes(self, n: int, n_clean: int) -> tuple[int, int]:
        size = B.min_count(self.min_bin_size, n)
        if size > n_clean:
            raise ValueError(
                f"{self._where}: min_bin_size={self.min_bin_size} asks for {size} rows per bin but the feature "
                f"has only {n_clean} rows that are neither missing nor special; min_bin_size cannot be met"
            )
        return size, B.min_count(self.min_prebin_size, n)

    def _solve(self, x: np.ndarray, t: np.ndarray, n: int, trends) -> tuple[np.ndarray, str]:
        """Best splits over x (float32, clean rows) among the trends; returns (splits, trend)."""
        size, prebin_size = self._min_sizes(n, x.size)
        splits = B.prebin(x, t, self.max_n_prebins, prebin_size).astype(np.float32).astype(np.float64)
        splits, nonevent, event = B.refine(np.unique(splits), x, t)
        best = None
        for trend in trends:
            starts = B.optimal_merge(nonevent, event, trend, size, self.max_n_bins)
            if starts is None:
                raise ValueError(f"{self._where}: no binning meets min_bin_size={self.min_bin_size}")
            chosen = splits[np.asarray(starts[1:], dtype=np.int64) - 1] if len(starts) > 1 else np.zeros(0)
            bins = np.searchsorted(chosen, x, side="right")
            ne, ev = B.bin_counts(bins, t, chosen.size + 1)
            iv = B.woe_iv(ne, ev)[1].sum()
            if best is None or iv > best[0] + 1e-12:
                best = (iv, chosen, trend)
        return best[1], best[2]

    def _adapt_numeric(self, x: np.ndarray, t: np.ndarray) -> dict:
        where = self._where
        if self.special_values and any(isinstance(s, str) for s in self.special_values):
            raise ValueError(f"{where}: the feature is numeric but special_values are strings")
        missing = np.isnan(x)
        special = np.isin(x, np.asarray(self.special_values or [], dtype=np.float32)) & ~missing
        clean = ~missing & ~special
        xc, tc = x[clean], t[clean]
        if xc.size == 0:
            raise ValueError(f"{where}: the feature has no values besides missing and special ones")
        if xc.min() == xc.max():
            raise ValueError(f"{where}: the feature is constant ({float(xc[0])!r} in every row); nothing to bin")
        trends = ("ascending", "descending") if self.monotonic_trend == "auto" else (self.monotonic_trend,)
        splits, trend = self._solve(xc, tc, x.size, trends)
        ne, ev = B.bin_counts(np.searchsorted(splits, xc, side="right"), tc, splits.size + 1)
        extra = [(t[special] == 0).sum(), t[special].sum(), (t[missing] == 0).sum(), t[missing].sum()]
        return {
            "kind": "numeric",
            "trend": trend,
            "splits": [float(s) for s in splits],
            "nonevent": [float(v) for v in ne] + [float(extra[0]), float(extra[2])],
            "event": [float(v) for v in ev] + [float(extra[1]), float(extra[3])],
        }

    def _adapt_categorical(self, a: np.ndarray, t: np.ndarray) -> dict:
        where = self._where
        if self.monotonic_trend not in _CATEGORICAL_TRENDS:
            raise ValueError(
                f"{where}: the feature is categorical (strings): its categories are ordered by event rate, so "
                f"monotonic_trend must be 'auto', 'ascending' or None, got {self.monotonic_trend!r}"
            )
        if self.special_values and not all(isinstance(s, str) for s in self.special_values):
            raise ValueError(f"{where}: the feature holds strings but special_values are numbers")
        missing = np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in a], dtype=bool)
        bad = [v for v in a[~missing] if not isinstance(v, str)]
        if bad:
            raise TypeError(f"{where}: the string feature holds {bad[0]!r} ({type(bad[0]).__name__})")
        special = np.isin(a, np.asarray(self.special_values or [], dtype=object)) & ~missing
        clean = ~missing & ~special
        cats, codes = np.unique(a[clean].astype(str), return_inverse=True)
        if cats.size == 0:
            raise ValueError(f"{where}: the feature has no values besides missing and special ones")
        if cats.size == 1:
            raise ValueError(f"{where}: the feature is constant ({cats[0]!r} in every row); nothing to bin")
        if MISSING_TOKEN in set(cats):
            raise ValueError(f"{where}: the feature holds the reserved token {MISSING_TOKEN!r}")
        tc = t[clean]
        order = B.category_order(codes, tc, cats.size)
        position = np.empty(cats.size, dtype=np.int64)
        position[order] = np.arange(cats.size)
        x = position[codes].astype(np.float32)
        splits, _ = self._solve(x, tc, a.size, ("ascending" if self.monotonic_trend else None,))
        group = np.searchsorted(splits, np.arange(cats.size, dtype=np.float32), side="right")
        ne, ev = B.bin_counts(np.searchsorted(splits, x, side="right"), tc, splits.size + 1)
        extra = [(t[special] == 0).sum(), t[special].sum(), (t[missing] == 0).sum(), t[missing].sum()]
        return {
            "kind": "categorical",
            "trend": "ascending" if self.monotonic_trend else None,
            "categories": [[str(cats[c]) for c in order[group == g]] for g in range(splits.size + 1)],
            "nonevent": [float(v) for v in ne] + [float(extra[0]), float(extra[2])],
            "event": [float(v) for v in ev] + [float(extra[1]), float(extra[3])],
        }

    # -- results -----------------------------------------------------------------------------------
    def bin_labels(self) -> list[str]:
        """Labels of the binning table's rows (bins, "Special", "Missing")."""
        b = self._require_adapted()
        if b["kind"] == "categorical":
            labels = [str(g) for g in b["categories"]]
        else:
            edges = [-np.inf] + list(b["splits"]) + [np.inf]
            labels = [f"{'(' if lo == -np.inf else '['}{lo:.6g}, {hi:.6g})" for lo, hi in zip(edges[:-1], edges[1:])]
        return labels + ["Special", "Missing"]

    def binning_table(self):
        """The binning table as optbinning prints it: one row per bin, then Special, Missing and Totals."""
        b = self._require_adapted()
        nonevent, event = np.asarray(b["nonevent"]), np.asarray(b["event"])
        count = nonevent + event
        woe, iv = B.woe_iv(nonevent, event)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(count > 0, event / count, 0.0)
        table = pd.DataFrame(
            {
                "Bin": self.bin_labels(),
                "Count": count.astype(np.int64),
                "Count (%)": count / count.sum(),
                "Non-event": nonevent.astype(np.int64),
                "Event": event.astype(np.int64),
                "Event rate": rate,
                "WoE": woe,
                "IV": iv,
            }
        )
        totals = {
            "Bin": "",
            "Count": int(count.sum()),
            "Count (%)": 1.0,
            "Non-event": int(nonevent.sum()),
            "Event": int(event.sum()),
            "Event rate": event.sum() / count.sum(),
            "WoE": np.nan,
            "IV": iv.sum(),
        }
        return pd.concat([table, pd.DataFrame([totals], index=["Totals"]).astype(table.dtypes.to_dict())])

    @property
    def iv(self) -> float:
        """Information value of the feature: the sum of the binning table's IV (bins, Special, Missing)."""
        b = self._require_adapted()
        return float(B.woe_iv(np.asarray(b["nonevent"]), np.asarray(b["event"]))[1].sum())

    def monotonic_direction(self):
        """+1 if the encoded WoE is non-decreasing in the raw numeric value, -1 if non-increasing,
        None otherwise (and for string features). Special and missing values are outside the order."""
        b = self._require_adapted()
        if b["kind"] != "numeric":
            return None
        d = np.diff(self.woe()[:-2].astype(np.float64))
        if np.all(d >= 0):
            return 1
        if np.all(d <= 0):
            return -1
        return None

    def get_config(self):
        return {
            **super().get_config(),
            "max_n_bins": self.max_n_bins,
            "min_bin_size": self.min_bin_size,
            "monotonic_trend": self.monotonic_trend,
            "special_values": self.special_values,
            "missing": self.missing,
            "max_n_prebins": self.max_n_prebins,
            "min_prebin_size": self.min_prebin_size,
            **{("binning_kind" if k == "kind" else f"bin_{k}"): v for k, v in self._binning_config().items()},
        }

    def _binning_config(self) -> dict:
        b = self.binning or {}
        return {
            "kind": b.get("kind"),
            "trend": b.get("trend"),
            "splits": b.get("splits"),
            "categories": b.get("categories"),
            "nonevent": b.get("nonevent"),
            "event": b.get("event"),
        }
