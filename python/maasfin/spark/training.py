"""fit on a Spark DataFrame: partitions streamed to the driver as Arrow IPC blobs (toLocalIterator)."""

from __future__ import annotations

import numpy as np

from maasfin.spark.scoring import check_numeric, feature_columns
from maasfin.streaming.pydataset import PyDataset, rebatch

__all__ = ["SparkDataset", "fit"]


def _to_ipc(batches):
    """Executor side: each Arrow record batch of the needed columns as one IPC stream blob."""
    import pyarrow as pa

    for batch in batches:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        yield pa.record_batch([pa.array([sink.getvalue().to_pybytes()], pa.binary())], names=["ipc"])


class SparkDataset(PyDataset):
    """The rows of a Spark DataFrame as batches of `batch_size`, read in partition order.

    Each epoch runs one Spark job: executors encode their Arrow batches (only the needed columns)
    as Arrow IPC, and the driver pulls them one partition at a time (`toLocalIterator` with
    prefetching), so driver memory is bounded by a partition, not the data. `len()` runs one
    count job when the dataset is created; cache the DataFrame if it is expensive to recompute.
    Random access (`ds[i]`) reads sequentially up to batch i: use it for inspection, not training."""

    def __init__(self, spark_df, columns, label, sample_weight=None, batch_size=32):
        super().__init__()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"SparkDataset: batch_size must be a positive integer, got {batch_size!r}")
        self.columns = list(columns)
        self.label = [label] if isinstance(label, str) else list(label)
        self.sample_weight = sample_weight
        self.batch_size = batch_size
        needed = self.columns + self.label + ([sample_weight] if sample_weight else [])
        self._frame = spark_df.select(*needed)
        self.num_rows = int(self._frame.count())

    @property
    def feature_names(self) -> list[str]:
        return list(self.columns)

    def __len__(self) -> int:
        return -(-self.num_rows // self.batch_size)

    def _blocks(self):
        import pyarrow as pa

        blobs = self._frame.mapInArrow(_to_ipc, "ipc binary").toLocalIterator(prefetchPartitions=True)
        for row in blobs:
            table = pa.ipc.open_stream(row["ipc"]).read_all()
            if table.num_rows == 0:
                continue
            x = np.empty((table.num_rows, len(self.columns)), np.float32)
            for j, n in enumerate(self.columns):
                x[:, j] = table.column(n).to_numpy()
            y = np.column_stack([table.column(n).to_numpy().astype(np.float32) for n in self.label])
            out = [x, y.reshape(-1) if len(self.label) == 1 else y]
            if self.sample_weight:
                out.append(table.column(self.sample_weight).to_numpy().astype(np.float32))
            yield out

    def iter_epoch(self, steps=None):
        n = len(self) if steps is None else min(steps, len(self))
        yield from rebatch(self._blocks(), self.batch_size, n)

    def __getitem__(self, index):
        n = len(self)
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not -n <= index < n:
            raise IndexError(f"SparkDataset: batch {index!r} is out of range for {n} batches")
        for k, batch in enumerate(self.iter_epoch(int(index) % n + 1)):
            if k == int(index) % n:
                return batch
        raise IndexError(f"SparkDataset: batch {index} is past the data's end")  # the data changed


def fit(model, spark_df, label, columns=None, sample_weight=None, batch_size=32, **fit_kwargs):
    """model.fit on the rows of `spark_df`, streamed partition by partition in order (SparkDataset):
    the same weights as fitting the collected rows in memory with shuffle=False. `label` names the
    target column(s); `columns` the features (default: the model's feature names, or every other
    column). Columns are checked before any job runs. Other keyword arguments go to model.fit."""
    labels = [label] if isinstance(label, str) else list(label)
    have = spark_df.schema.fieldNames()
    missing = [c for c in labels + ([sample_weight] if sample_weight else []) if c not in have]
    if missing:
        raise ValueError(f"maasfin.spark.fit: the Spark DataFrame has no column(s) {missing}; it has {have}")
    if columns is None and (not model.built or model.feature_names is None):
        columns = [c for c in have if c not in labels and c != sample_weight]
    if model.built:
        cols = feature_columns(model, spark_df.schema, columns, "maasfin.spark.fit")
    else:
        cols = [columns] if isinstance(columns, str) else list(columns)
        check_numeric(spark_df.schema, cols, "maasfin.spark.fit")
    check_numeric(spark_df.schema, labels, "maasfin.spark.fit")
    ds = SparkDataset(spark_df, cols, labels, sample_weight, batch_size=batch_size)
    return model.fit(ds, **fit_kwargs)
