"""predict / explain on a Spark DataFrame: Arrow batches through pandas UDFs, the model broadcast once."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from maasfin import config
from maasfin.explain import explained_feature_names, reasons_from_attributions
from maasfin.models import from_bytes

try:
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError('maasfin.spark needs PySpark; install it with: pip install "maasfin[spark]"') from exc

__all__ = ["predict", "explain", "feature_columns", "check_numeric", "worker_model"]

_CACHE: dict = {}  # per Python worker process: digest -> model
_NUMERIC = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType, T.BooleanType)


def feature_columns(model, schema, columns, what: str) -> list[str]:
    """The Spark columns feeding the model, in its order; ValueError naming what is missing or not
    numeric. Checked on the driver from the schema, before any task runs."""
    sig = model.signature
    if columns is not None:
        names = [columns] if isinstance(columns, str) else list(columns)
    elif sig.feature_names is not None:
        names = list(sig.feature_names)
    else:
        raise ValueError(
            f"{what}: model '{model.name}' has no feature names (it was trained on arrays); pass "
            f"columns=[...] naming the Spark columns in the model's input order"
        )
    width = int(np.prod(sig.inputs[0].shape)) if len(sig.inputs) == 1 else None
    if width is not None and len(names) != width:
        raise ValueError(f"{what}: model '{model.name}' takes {width} features but columns names {len(names)}")
    check_numeric(schema, names, what, f" that model '{model.name}' needs")
    return names


def check_numeric(schema, names: list[str], what: str, needs: str = "") -> None:
    """Every name is a numeric column of the Spark schema; ValueError naming the first that is not."""
    have = schema.fieldNames()
    missing = [n for n in names if n not in have]
    if missing:
        raise ValueError(f"{what}: the Spark DataFrame has no column(s) {missing}{needs}; it has {have}")
    for n in names:
        dtype = schema[n].dataType
        if not isinstance(dtype, _NUMERIC):
            raise ValueError(f"{what}: column {n!r} of the Spark DataFrame is {dtype.simpleString()}, not numeric")


def worker_model(payload):
    """The broadcast model, loaded once per Python worker; the core uses the task's CPUs."""
    digest, raw = payload
    model = _CACHE.get(digest)
    if model is None:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        if ctx is not None:
            config.set_num_threads(max(1, int(ctx.cpus())))
        model = from_bytes(raw)
        _CACHE.clear()
        _CACHE[digest] = model
    return model


def _scores(model, frame) -> np.ndarray:
    """The batch's scores: inference is batch-invariant, so a row's score never depends on the
    Arrow batch it arrived in (bit-identical to model.predict)."""
    return model.predict_arrays(model.prepare_inputs(frame, "batch"))


def _broadcast(spark, model):
    raw = model.to_bytes(include_optimizer=False)
    return spark.sparkContext.broadcast((hashlib.sha256(raw).hexdigest(), raw))


def predict(model, spark_df, columns=None, output_columns=None):
    """`spark_df` with the model's scores appended (FloatType columns "score", or score_0..k-1, or
    `output_columns`); every other column and the row count are kept. Lazy, like any Spark
    transformation. `columns` names the features when the model has none (trained on arrays).

    A pandas UDF over the feature columns: only they travel to Python (as Arrow batches) and only
    the scores come back; the other columns stay in the JVM."""
    cols = feature_columns(model, spark_df.schema, columns, "maasfin.spark.predict")
    width = int(np.prod(model.output_shape[1:]))
    out = _output_names(output_columns, width, spark_df.schema)
    shipped = _broadcast(spark_df.sparkSession, model)
    if width == 1:
        return_type = T.FloatType()
    else:
        return_type = T.StructType([T.StructField(c, T.FloatType(), True) for c in out])

    def score(*series):
        m = worker_model(shipped.value)
        frame = pd.concat(series, axis=1, keys=cols)
        n = len(frame)
        y = _scores(m, frame).reshape(n, -1) if n else np.zeros((0, width), np.float32)
        if width == 1:
            return pd.Series(y[:, 0])
        return pd.DataFrame(y, columns=out)

    udf = F.pandas_udf(score, return_type)
    scored = udf(*[F.col(c) for c in cols])
    if width == 1:
        return spark_df.withColumn(out[0], scored)
    tmp = "__maasfin_scores"
    return spark_df.withColumn(tmp, scored).select("*", *[F.col(f"{tmp}.{c}").alias(c) for c in out]).drop(tmp)


def explain(model, spark_df, columns=None, prefix="attr_", reason_codes=0, adverse="high", **kwargs):
    """`spark_df` with one DoubleType column `prefix + feature` per explained feature: the
    attributions of model.explain (kwargs: baseline, steps, output, tolerance). With
    `reason_codes=k`, also string columns reason_1..reason_k: per row the k features pushing the
    score toward the adverse outcome (model.reasons: their code from set_reason_codes, else the
    feature's name; null when fewer features push that way)."""
    cols = feature_columns(model, spark_df.schema, columns, "maasfin.spark.explain")
    unknown = sorted(set(kwargs) - {"baseline", "steps", "output", "tolerance", "method"})
    if unknown:
        raise TypeError(f"maasfin.spark.explain: unexpected arguments {unknown}")
    if isinstance(reason_codes, bool) or not isinstance(reason_codes, int) or reason_codes < 0:
        raise ValueError(f"reason_codes must be a non-negative integer, got {reason_codes!r}")
    if adverse not in ("high", "low"):
        raise ValueError(f"adverse must be 'high' or 'low', got {adverse!r}")
    out = [prefix + n for n in explained_feature_names(model)]
    codes = [f"reason_{k + 1}" for k in range(reason_codes)]
    _output_names(out + codes, len(out) + len(codes), spark_df.schema)
    shipped = _broadcast(spark_df.sparkSession, model)
    schema = T.StructType(
        spark_df.schema.fields
        + [T.StructField(c, T.DoubleType(), False) for c in out]
        + [T.StructField(c, T.StringType(), True) for c in codes]
    )

    def attribute(batches):
        m = worker_model(shipped.value)
        for pdf in batches:
            values = np.zeros((0, len(out)))
            if len(pdf):
                got = m.explain(pdf[cols], **kwargs)
                values = np.asarray(got.to_numpy() if hasattr(got, "to_numpy") else got, dtype=np.float64)
            for k, c in enumerate(out):
                pdf[c] = values[:, k]
            if codes:
                rows = reasons_from_attributions(m, values, reason_codes, adverse)
                for k, c in enumerate(codes):
                    pdf[c] = [(r[k]["code"] or r[k]["feature"]) if k < len(r) else None for r in rows]
            yield pdf

    return spark_df.mapInPandas(attribute, schema)


def _output_names(output_columns, width: int, schema) -> list[str]:
    if output_columns is None:
        names = ["score"] if width == 1 else [f"score_{k}" for k in range(width)]
    else:
        names = [output_columns] if isinstance(output_columns, str) else [str(c) for c in output_columns]
    if len(names) != width or len(set(names)) != width:
        raise ValueError(f"output_columns must be {width} distinct names (the model has {width} outputs), got {names}")
    clash = [n for n in names if n in schema.fieldNames()]
    if clash:
        raise ValueError(f"the Spark DataFrame already has column(s) {clash}; choose other output_columns")
    return names
