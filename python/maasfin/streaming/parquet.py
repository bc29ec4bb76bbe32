"""ParquetDataset: Parquet files streamed row group by row group with pyarrow, as fixed-size batches."""

from __future__ import annotations

import glob
import os
import threading
from collections import OrderedDict

import numpy as np

from maasfin.streaming.pydataset import PyDataset, rebatch

__all__ = ["ParquetDataset"]


def _pyarrow():
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError('ParquetDataset needs pyarrow; install it with: pip install "maasfin[parquet]"') from exc
    return pq


def _expand(paths) -> list[str]:
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise ValueError("ParquetDataset: paths is empty; give a file, a directory or a list of files")
    out = []
    for p in items:
        p = os.fspath(p)
        if os.path.isdir(p):
            found = sorted(glob.glob(os.path.join(p, "*.parquet")))
            if not found:
                raise ValueError(f"ParquetDataset: directory {p!r} holds no *.parquet files")
            out += found
        elif os.path.isfile(p):
            out.append(p)
        else:
            raise ValueError(f"ParquetDataset: {p!r} is neither a file nor a directory")
    return out


def _names(value, what: str) -> list[str]:
    if value is None:
        return []
    names = [value] if isinstance(value, str) else list(value)
    if not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"ParquetDataset: {what} must be a column name or a list of column names, got {value!r}")
    return names


class ParquetDataset(PyDataset):
    """Batches of `batch_size` rows read from Parquet files in order, one row group at a time.

    Args:
        paths: a file, a directory (its *.parquet files, sorted) or a list of files; read in order.
        columns: the feature columns, in the model's input order (default: every column that is
            not `label` or `sample_weight`, in the file's order).
        label: the target column(s), or None for prediction-only data.
        sample_weight: a column of per-row weights, or None.
        batch_size: rows per batch; batches run across row-group and file boundaries, so batch k
            holds rows [k * batch_size, (k + 1) * batch_size) of the files concatenated.
        workers, use_multiprocessing, max_queue_size: as PyDataset.

    Each item is `x` (float32, (batch, len(columns))), `(x, y)` or `(x, y, sample_weight)`.
    Every file must have the same types for these columns (checked when the dataset is created,
    from the files' footers only). At most two decoded row groups are held (an LRU cache), so
    memory is bounded by the row-group size, not the data size. Needs `pip install "maasfin[parquet]"`.
    """

    def __init__(
        self,
        paths,
        columns=None,
        label=None,
        sample_weight=None,
        batch_size=32,
        workers=1,
        use_multiprocessing=False,
        max_queue_size=10,
    ):
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"ParquetDataset: batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        self.paths = _expand(paths)
        self.label = _names(label, "label")
        self.sample_weight = _names(sample_weight, "sample_weight")
        if len(self.sample_weight) > 1:
            raise ValueError(f"ParquetDataset: sample_weight names one column, got {sample_weight!r}")
        pq = _pyarrow()
        groups, schema0 = [], None
        for path in self.paths:
            meta = pq.ParquetFile(path).metadata
            schema = meta.schema.to_arrow_schema()
            if schema0 is None:
                schema0 = schema
                others = set(self.label) | set(self.sample_weight)
                self.columns = _names(columns, "columns") or [n for n in schema.names if n not in others]
                self._check_columns(path, schema)
                self._types = {n: schema.field(n).type for n in self._needed()}
            else:
                self._check_columns(path, schema)
                for n in self._needed():
                    if schema.field(n).type != self._types[n]:
                        raise ValueError(
                            f"ParquetDataset: column {n!r} is {schema.field(n).type} in {path!r} but "
                            f"{self._types[n]} in {self.paths[0]!r}; every file needs the same schema"
                        )
            groups += [(path, g, meta.row_group(g).num_rows) for g in range(meta.num_row_groups)]
        if not self.columns:
            raise ValueError("ParquetDataset: no feature columns (columns is empty)")
        self._groups = [g for g in groups if g[2] > 0]
        self._starts = np.cumsum([0] + [g[2] for g in self._groups])
        self.num_rows = int(self._starts[-1])
        self._cache: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def _needed(self) -> list[str]:
        return list(self.columns) + self.label + self.sample_weight

    def _check_columns(self, path: str, schema) -> None:
        missing = [n for n in self._needed() if n not in schema.names]
        if missing:
            raise ValueError(
                f"ParquetDataset: {path!r} has no column(s) {missing}; its columns are {list(schema.names)}"
            )
        import pyarrow as pa

        numeric = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_decimal)
        for n in self._needed():
            t = schema.field(n).type
            if not any(f(t) for f in numeric):
                raise ValueError(f"ParquetDataset: column {n!r} of {path!r} is {t}, not a number")

    @property
    def feature_names(self) -> list[str]:
        """The feature columns, in the order of x's columns."""
        return list(self.columns)

    def __len__(self) -> int:
        return -(-self.num_rows // self.batch_size)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cache"], state["_lock"] = OrderedDict(), None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _group(self, k: int) -> dict[str, np.ndarray]:
        with self._lock:
            if k in self._cache:
                self._cache.move_to_end(k)
                return self._cache[k]
        path, g, _ = self._groups[k]
        table = _pyarrow().ParquetFile(path).read_row_group(g, columns=self._needed())
        cols = {n: table.column(n).to_numpy() for n in self._needed()}
        with self._lock:
            self._cache[k] = cols
            while len(self._cache) > 2:
                self._cache.popitem(last=False)
        return cols

    def rows(self, start: int, stop: int) -> tuple:
        """Rows [start, stop) as the dataset's batch tuple (any range, across row groups and files)."""
        stop = min(stop, self.num_rows)
        if not 0 <= start < stop:
            raise IndexError(f"ParquetDataset: rows [{start}, {stop}) are outside [0, {self.num_rows})")
        parts: dict[str, list] = {n: [] for n in self._needed()}
        k = int(np.searchsorted(self._starts, start, side="right")) - 1
        while start < stop:
            lo = start - int(self._starts[k])
            hi = min(stop, int(self._starts[k + 1])) - int(self._starts[k])
            cols = self._group(k)
            for n in parts:
                parts[n].append(cols[n][lo:hi])
            start += hi - lo
            k += 1
        arrays = {n: (v[0] if len(v) == 1 else np.concatenate(v)) for n, v in parts.items()}
        x = np.empty((len(arrays[self.columns[0]]), len(self.columns)), np.float32)
        for j, n in enumerate(self.columns):
            x[:, j] = arrays[n]
        out = [x]
        if self.label:
            y = np.column_stack([arrays[n].astype(np.float32) for n in self.label])
            out.append(y if len(self.label) > 1 else y.reshape(-1))
        if self.sample_weight:
            out.append(arrays[self.sample_weight[0]].astype(np.float32))
        return out[0] if len(out) == 1 else tuple(out)

    def _group_arrays(self, k: int) -> list[np.ndarray]:
        """Row group k as the batch parts (x float32, y, weights), one array each."""
        path, g, _ = self._groups[k]
        table = _pyarrow().ParquetFile(path).read_row_group(g, columns=self._needed())
        x = np.empty((table.num_rows, len(self.columns)), np.float32)
        for j, n in enumerate(self.columns):
            x[:, j] = table.column(n).to_numpy()
        out = [x]
        if self.label:
            y = np.column_stack([table.column(n).to_numpy().astype(np.float32) for n in self.label])
            out.append(y if len(self.label) > 1 else y.reshape(-1))
        if self.sample_weight:
            out.append(table.column(self.sample_weight[0]).to_numpy().astype(np.float32))
        return out

    def iter_epoch(self, steps: int | None = None):
        """The batches in order, read sequentially: each row group is decoded once into one array
        per part and the batches are slices of it (a batch that spans two groups is joined)."""
        if self.workers > 1 or self.use_multiprocessing:
            yield from super().iter_epoch(steps)
            return
        n_batches = len(self) if steps is None else min(steps, len(self))
        yield from rebatch((self._group_arrays(k) for k in range(len(self._groups))), self.batch_size, n_batches)

    def __getitem__(self, index):
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"ParquetDataset: batch index must be an integer, got {index!r}")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"ParquetDataset: batch {index} is out of range for {n} batches")
        index = int(index) % n
        return self.rows(index * self.batch_size, (index + 1) * self.batch_size)
