"""The model schema a Dask DataFrame must match, checked from its metadata before any task runs."""

from __future__ import annotations

import hashlib

import numpy as np
from pandas.api.types import is_numeric_dtype

from maasfin import config
from maasfin.explain import explained_feature_names
from maasfin.models import from_bytes

try:
    import dask  # noqa: F401
    import dask.dataframe  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError('maasfin.dask needs Dask; install it with: pip install "maasfin[dask]"') from exc

__all__ = ["feature_columns", "model_payload", "worker_model", "attribution_names"]

_CACHE: dict = {}  # per process (each Dask worker): model digest -> loaded model
_CACHE_SIZE = 4


def feature_columns(model, ddf, columns, what: str) -> list[str]:
    """The columns of `ddf` that feed the model, in the model's order; ValueError naming what is
    missing or not numeric. `columns` overrides the model's feature names (for models trained on
    arrays); extra columns of `ddf` are ignored."""
    sig = model.signature
    if columns is not None:
        names = [columns] if isinstance(columns, str) else list(columns)
    elif sig.feature_names is not None:
        names = list(sig.feature_names)
    elif len(sig.inputs) > 1 or sig.raw:
        names = [spec.name for spec in sig.inputs]
    else:
        names = None
    have = [str(c) for c in ddf.columns]
    if names is None:
        width = int(np.prod(sig.inputs[0].shape))
        if len(have) != width:
            raise ValueError(
                f"{what}: model '{model.name}' takes {width} features and has no feature names, but the "
                f"Dask DataFrame has {len(have)} columns {have}; pass columns=[...] in the model's order"
            )
        names = have
    missing = [n for n in names if n not in have]
    if missing:
        raise ValueError(
            f"{what}: the Dask DataFrame has no column(s) {missing} that model '{model.name}' needs; it has {have}"
        )
    strings = {spec.name for spec in sig.inputs if spec.dtype == "string"}
    for n in names:
        dtype = ddf.dtypes[n]
        if n not in strings and not is_numeric_dtype(dtype):
            raise ValueError(f"{what}: column {n!r} of the Dask DataFrame is {dtype}, not numeric")
    return names


def model_payload(model) -> tuple[str, bytes]:
    """(digest, .maas bytes) of a model: what is shipped to the workers, once each."""
    raw = model.to_bytes(include_optimizer=False)
    return hashlib.sha256(raw).hexdigest(), raw


def worker_model(digest: str, raw: bytes):
    """The model of `raw`, loaded once per process (kept for the next partitions and calls)."""
    model = _CACHE.get(digest)
    if model is None:
        _limit_threads()
        model = from_bytes(raw)
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[digest] = model
    return model


def _limit_threads() -> None:
    """On a distributed worker, the core uses the worker's threads (no oversubscription)."""
    try:
        from distributed import get_worker

        threads = get_worker().state.nthreads
    except (ImportError, ValueError, AttributeError):
        return
    if config.get_num_threads() != threads:
        config.set_num_threads(threads)


def attribution_names(model) -> list[str]:
    """The column names of explain's output."""
    return explained_feature_names(model)
