"""Optimal binning of one feature against a binary target: prebinning, then an exact dynamic programme.

Follows optbinning's `OptimalBinning` (Navas-Palencia, 2020) with its defaults:

1. Prebinning: a best-first classification tree on the feature alone (scikit-learn's
   `DecisionTreeClassifier(max_leaf_nodes=max_n_prebins, min_samples_leaf=ceil(min_prebin_size * n))`,
   Gini impurity, thresholds at the midpoint of two neighbouring values), then prebins with no event
   or no non-event are merged into their right neighbour (the last into its left one) until none is left.
2. Optimal binning: adjacent prebins are merged so that the information value (IV) is maximal under the
   event-rate trend, the minimum bin size and the maximum number of bins. IV is a sum over bins, so an
   exact dynamic programme over (end of the last bin, start of the last bin, number of bins, trend
   phase) finds the optimum; optbinning states the same problem as a constraint programme.

Shares and rates follow optbinning's binning table: WoE = ln(non-event share / event share) and
IV = (event share - non-event share) * ln(event share / non-event share), both 0 for a bin without
events or without non-events.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

__all__ = ["TRENDS", "prebin", "optimal_merge", "woe_iv", "category_order"]

TRENDS = ("auto", "ascending", "descending", "peak", "valley", None)


def _gini_gain(cum_e: np.ndarray, cum_n: np.ndarray, total_e: float, total_n: float) -> np.ndarray:
    """Gini impurity decrease (times node size) of every left/right split given cumulative counts."""
    left = cum_e + cum_n
    right = (total_e + total_n) - left
    gini_left = 1.0 - (cum_e**2 + cum_n**2) / left**2
    gini_right = 1.0 - ((total_e - cum_e) ** 2 + (total_n - cum_n) ** 2) / right**2
    node = total_e + total_n
    gini_node = 1.0 - (total_e**2 + total_n**2) / node**2
    return node * gini_node - left * gini_left - right * gini_right


def prebin(x: np.ndarray, y: np.ndarray, max_n_prebins: int, min_leaf: int) -> np.ndarray:
    """Split points (ascending float64) of the best-first Gini tree on sorted-able values x (float32)."""
    order = np.argsort(x, kind="stable")
    xs, ys = x[order].astype(np.float64), y[order].astype(np.float64)
    cum_e = np.concatenate([[0.0], np.cumsum(ys)])
    n = xs.size
    # A split position p (1 <= p < n) puts rows [a, p) left and [p, b) right; valid only between
    # distinct values (scikit-learn: x[p] > x[p-1] + 1e-7).
    distinct = np.zeros(n + 1, dtype=bool)
    distinct[1:n] = xs[1:] > xs[:-1] + 1e-7

    def best_split(a: int, b: int):
        if b - a < 2 * min_leaf:
            return None
        e_node = cum_e[b] - cum_e[a]
        if e_node == 0 or e_node == b - a:  # a pure node is a leaf
            return None
        p = np.arange(a + min_leaf, b - min_leaf + 1)
        p = p[distinct[p]]
        if p.size == 0:
            return None
        ce = cum_e[p] - cum_e[a]
        cn = (p - a) - ce
        gain = _gini_gain(ce, cn, e_node, (b - a) - e_node)
        k = int(np.argmax(gain))  # the first best position, as scikit-learn
        if not gain[k] > 1e-12:
            return None
        return float(gain[k]), int(p[k])

    splits: list[float] = []
    heap: list = []
    first = best_split(0, n)
    if first is not None:
        heapq.heappush(heap, (-first[0], 0, n, first[1]))
    leaves = 1
    while heap and leaves < max_n_prebins:
        _, a, b, p = heapq.heappop(heap)
        splits.append(xs[p - 1] / 2.0 + xs[p] / 2.0)
        leaves += 1
        for lo, hi in ((a, p), (p, b)):
            s = best_split(lo, hi)
            if s is not None:
                heapq.heappush(heap, (-s[0], lo, hi, s[1]))
    return np.unique(np.asarray(splits, dtype=np.float64))


def bin_counts(bins: np.ndarray, y: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """(non-events, events) per bin index in [0, n_bins)."""
    events = np.bincount(bins, weights=y, minlength=n_bins)
    total = np.bincount(bins, minlength=n_bins).astype(np.float64)
    return total - events, events


def refine(splits: np.ndarray, x: np.ndarray, y: np.ndarray):
    """Removes the splits next to prebins without events or non-events (optbinning's refinement);
    returns (splits, non-events, events) of the remaining prebins."""
    while True:
        bins = np.searchsorted(splits, x, side="right")
        nonevent, event = bin_counts(bins, y, splits.size + 1)
        pure = (nonevent == 0) | (event == 0)
        if splits.size == 0 or not pure.any():
            return splits, nonevent, event
        drop = np.concatenate([pure[:-2], [pure[-2] | pure[-1]]])
        splits = splits[~drop]


def _iv_terms(nonevent: np.ndarray, event: np.ndarray, total_n: float, total_e: float) -> np.ndarray:
    pe, pn = event / total_e, nonevent / total_n
    with np.errstate(divide="ignore", invalid="ignore"):
        iv = (pe - pn) * np.log(pe / pn)
    return np.where((event > 0) & (nonevent > 0), iv, 0.0)


def optimal_merge(nonevent: np.ndarray, event: np.ndarray, trend, min_size: float, max_n_bins):
    """Groups of adjacent prebins maximising IV: returns the list of group starts (first is 0), or
    None when no grouping meets min_size (the smallest bin count). `trend` is "ascending",
    "descending", "peak", "valley" (of the event rate) or None."""
    m = nonevent.size
    cn = np.concatenate([[0.0], np.cumsum(nonevent)])
    ce = np.concatenate([[0.0], np.cumsum(event)])
    # Segment [i, j) of prebins: counts, rate and IV, as (m + 1) x (m + 1) tables.
    seg_n = cn[None, :] - cn[:, None]
    seg_e = ce[None, :] - ce[:, None]
    size = seg_n + seg_e
    valid = np.triu(np.ones((m + 1, m + 1), dtype=bool), 1) & (size >= min_size - 1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(size > 0, seg_e / size, 0.0)
    iv = np.where(valid, _iv_terms(seg_n, seg_e, cn[-1], ce[-1]), -np.inf)
    counted = max_n_bins is not None and max_n_bins < m  # else the number of bins is free
    kmax = max_n_bins if counted else 1
    phases = 2 if trend in ("peak", "valley") else 1
    neg = -np.inf
    # best[j, i, k, ph]: best IV of prebins [0, j) whose last bin is [i, j), made of k + 1 bins (k = 0
    # when uncounted), in phase ph (peak/valley: 0 before the turn, 1 after).
    best = np.full((m + 1, m + 1, kmax, phases), neg)
    back = np.full((m + 1, m + 1, kmax, phases, 2), -1, dtype=np.int64)
    best[1:, 0, 0, 0] = iv[0, 1:]
    every = np.ones(m + 1, dtype=bool)
    for j in range(2, m + 1):
        for i in range(1, j):
            if not valid[i, j]:
                continue
            r = rate[i, j]
            prev_r = rate[:i, i]  # rate of the previous bin [h, i) for every h
            up, down = prev_r <= r + 1e-12, prev_r >= r - 1e-12
            if trend is None:
                rules = [[(0, every[:i])]]
            elif trend in ("ascending", "descending"):
                rules = [[(0, up if trend == "ascending" else down)]]
            else:  # before the turn: the first direction; after: the other one, from either phase
                first, turn = (up, down) if trend == "peak" else (down, up)
                rules = [[(0, first)], [(0, turn), (1, turn)]]
            for k in range(1 if counted else 0, kmax):
                prev = best[i, :i, k - 1 if counted else 0]  # (h, phase)
                for ph, sources in enumerate(rules):
                    top, arg = neg, None
                    for src, ok in sources:
                        c = np.where(ok, prev[:, src], neg)
                        h = int(np.argmax(c))
                        if c[h] > top:
                            top, arg = c[h], (h, src)
                    if arg is not None:
                        best[j, i, k, ph] = top + iv[i, j]
                        back[j, i, k, ph] = arg
    final = best[m]  # (i, k, ph)
    if not np.isfinite(final).any():
        return None
    top = np.max(final)
    # Among optimal groupings (within rounding), the first found: fewest bins when counted.
    i, k, ph = (int(v) for v in np.argwhere(final >= top - 1e-12 * max(1.0, abs(top)))[0])
    starts, j = [], m
    while True:
        starts.append(i)
        if i == 0:
            break
        h, src = back[j, i, k, ph]
        j, i, k, ph = i, int(h), (k - 1 if counted else 0), int(src)
    return sorted(starts)


def woe_iv(nonevent: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row WoE and IV of a binning table's rows (optbinning's formulas, totals over all rows)."""
    total_n, total_e = float(nonevent.sum()), float(event.sum())
    ok = (event > 0) & (nonevent > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        woe = np.where(ok, np.log((nonevent / total_n) / (event / total_e)), 0.0)
    return woe, _iv_terms(nonevent, event, total_n, total_e)


def category_order(codes: np.ndarray, y: np.ndarray, n_categories: int) -> np.ndarray:
    """Category codes sorted by ascending event rate (ties by code), as optbinning orders categories."""
    nonevent, event = bin_counts(codes, y, n_categories)
    rate = event / np.maximum(nonevent + event, 1)
    return np.lexsort((np.arange(n_categories), rate))


def min_count(fraction: float, n: int) -> int:
    return int(math.ceil(fraction * n - 1e-9))
