"""Kernel SHAP (Lundberg & Lee 2017) for estimators without an exact explainer: seeded and additive.

The value of a coalition S of raw features is the mean model output over the stored background
rows with the features in S taken from x. The attributions solve the Shapley kernel's weighted
least squares with the additivity constraint (they sum to f(x) minus the mean background output).
With 2^F - 2 <= nsamples every coalition is enumerated and the result is the exact Shapley value;
otherwise coalitions are drawn by a seeded generator, sizes in proportion to the kernel's weight.
"""

from __future__ import annotations

import math

import numpy as np


def _coalitions(F: int, nsamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(Z, weights): coalitions as 0/1 rows (neither empty nor full) and their kernel weights."""
    if (1 << F) - 2 <= nsamples:
        codes = np.arange(1, (1 << F) - 1, dtype=np.int64)
        Z = ((codes[:, None] >> np.arange(F)) & 1).astype(np.float64)
        s = Z.sum(axis=1).astype(int)
        comb = np.array([math.comb(F, k) for k in range(F + 1)], dtype=np.float64)
        return Z, (F - 1) / (comb[s] * s * (F - s))
    rng = np.random.default_rng(seed)
    sizes = np.arange(1, F)
    p = (F - 1) / (sizes * (F - sizes))
    drawn = rng.choice(sizes, size=nsamples, p=p / p.sum())
    Z = np.zeros((nsamples, F))
    for i, k in enumerate(drawn):
        Z[i, rng.choice(F, size=k, replace=False)] = 1.0
    return Z, np.ones(nsamples)  # sampled in proportion to the kernel: equal weights


def kernel_shap(f, x: np.ndarray, background: np.ndarray, nsamples: int = 2048, seed: int = 0) -> np.ndarray:
    """Attributions (rows, F + 1) of f (an (M, F) float32 matrix -> M values) at the rows of x,
    the last column the mean background output; each row sums to f(x)."""
    N, F = x.shape
    B = background.shape[0]
    base = float(np.mean(f(background)))
    fx = f(x)
    out = np.zeros((N, F + 1))
    out[:, -1] = base
    if F == 1:
        out[:, 0] = fx - base
        return out
    Z, w = _coalitions(F, nsamples, seed)
    for i in range(N):
        hybrid = np.where(Z[:, None, :] > 0, x[i][None, None, :], background[None, :, :]).reshape(-1, F)
        v = f(np.ascontiguousarray(hybrid, dtype=np.float32)).reshape(len(Z), B).mean(axis=1) - base
        total = fx[i] - base
        # eliminate the last feature with the constraint sum(phi) = total, then weighted least squares
        y = v - Z[:, -1] * total
        A = Z[:, :-1] - Z[:, -1:]
        sw = np.sqrt(w)[:, None]
        phi, *_ = np.linalg.lstsq(A * sw, y * sw[:, 0], rcond=None)
        out[i, :-2] = phi
        out[i, -2] = total - phi.sum()
    return out
