"""predict / explain over a Dask DataFrame: one task per partition, the model shipped once per worker."""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd

from maasfin.dask.schema import attribution_names, feature_columns, model_payload, worker_model

__all__ = ["predict", "explain"]


def _scores(model, frame: pd.DataFrame) -> np.ndarray:
    """The partition's scores: inference is batch-invariant, so a row's score does not depend on
    where its partition starts or how many rows it holds (bit-identical to model.predict)."""
    return model.predict_arrays(model.prepare_inputs(frame, "partition"))


def _score_partition(part: pd.DataFrame, payload, columns: list[str], out: list[str]) -> pd.DataFrame:
    digest, raw = payload
    model = worker_model(digest, raw)
    if len(part) == 0:
        return pd.DataFrame({c: np.zeros(0, np.float32) for c in out}, index=part.index)
    y = _scores(model, part[columns]).reshape(len(part), -1)
    return pd.DataFrame(y, index=part.index, columns=out)


def _explain_partition(part: pd.DataFrame, payload, columns: list[str], out: list[str], kwargs: dict):
    digest, raw = payload
    model = worker_model(digest, raw)
    if len(part) == 0:
        return pd.DataFrame({c: np.zeros(0, np.float64) for c in out}, index=part.index)
    got = model.explain(part[columns], **kwargs)
    values = got.to_numpy() if hasattr(got, "to_numpy") else np.asarray(got)
    return pd.DataFrame(values.astype(np.float64), index=part.index, columns=out)


def _shipped(model):
    """The model's .maas bytes as one Dask task: a worker fetches it once and keeps the loaded
    model for all its partitions (every partition task depends on this one key)."""
    digest, raw = model_payload(model)
    return dask.delayed((digest, raw), pure=True, name=f"maasfin-model-{digest[:16]}")


def predict(model, ddf, columns=None, output_columns=None):
    """Scores of every row of the Dask DataFrame `ddf`, as a Dask DataFrame with `ddf`'s index
    and partitions (lazy: call .compute() or .to_parquet()). `columns` names the features when
    the model has no feature names; `output_columns` names the outputs (default "score", or
    score_0..k-1 for k outputs). The columns are checked against the model before any task runs."""
    cols = feature_columns(model, ddf, columns, "maasfin.dask.predict")
    width = int(np.prod(model.output_shape[1:]))
    out = _output_names(output_columns, width)
    meta = pd.DataFrame({c: np.zeros(0, np.float32) for c in out})
    return ddf.map_partitions(_score_partition, _shipped(model), cols, out, meta=meta, enforce_metadata=False)


def explain(model, ddf, columns=None, **kwargs):
    """Per-row feature attributions (model.explain: integrated gradients) of the Dask DataFrame
    `ddf`, as a Dask DataFrame with one float64 column per explained feature. Keyword arguments
    (baseline, steps, output, tolerance) go to model.explain."""
    cols = feature_columns(model, ddf, columns, "maasfin.dask.explain")
    unknown = sorted(set(kwargs) - {"baseline", "steps", "output", "tolerance", "method"})
    if unknown:
        raise TypeError(f"maasfin.dask.explain: unexpected arguments {unknown}")
    out = attribution_names(model)
    meta = pd.DataFrame({c: np.zeros(0, np.float64) for c in out})
    return ddf.map_partitions(_explain_partition, _shipped(model), cols, out, kwargs, meta=meta, enforce_metadata=False)


def _output_names(output_columns, width: int) -> list[str]:
    if output_columns is None:
        return ["score"] if width == 1 else [f"score_{k}" for k in range(width)]
    names = [output_columns] if isinstance(output_columns, str) else [str(c) for c in output_columns]
    if len(names) != width or len(set(names)) != width:
        raise ValueError(f"output_columns must be {width} distinct names (the model has {width} outputs), got {names}")
    return names
