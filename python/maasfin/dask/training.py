"""fit on a Dask DataFrame: its partitions streamed in order through the streaming path of model.fit."""

from __future__ import annotations

import numpy as np
from pandas.api.types import is_numeric_dtype

from maasfin.dask.schema import feature_columns
from maasfin.streaming.pydataset import PyDataset, rebatch

__all__ = ["DaskDataset", "fit"]


def _client():
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


class DaskDataset(PyDataset):
    """The rows of a Dask DataFrame as batches of `batch_size` (Keras PyDataset semantics).

    Partitions are computed in order, `prefetch` of them ahead (as futures when a
    distributed.Client is active, so the cluster computes them while the model trains); batch k
    holds rows [k * batch_size, (k + 1) * batch_size) of the partitions concatenated. Creating it
    computes the partitions' lengths (one pass). x is float32 in `columns` order; y the `label`
    column(s); the weights the `sample_weight` column."""

    def __init__(self, ddf, columns, label, sample_weight=None, batch_size=32, prefetch=2):
        super().__init__()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"DaskDataset: batch_size must be a positive integer, got {batch_size!r}")
        self.columns = list(columns)
        self.label = [label] if isinstance(label, str) else list(label)
        self.sample_weight = sample_weight
        self.batch_size, self.prefetch = batch_size, max(1, int(prefetch))
        needed = self.columns + self.label + ([sample_weight] if sample_weight else [])
        self._parts = ddf[needed].to_delayed()
        self._lengths = np.asarray(ddf.map_partitions(len).compute(), dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(self._lengths)])
        self._cached = (None, None)

    @property
    def feature_names(self) -> list[str]:
        return list(self.columns)

    def __len__(self) -> int:
        return -(-int(self._starts[-1]) // self.batch_size)

    def _arrays(self, frame) -> list[np.ndarray]:
        x = np.ascontiguousarray(frame[self.columns].to_numpy(dtype=np.float32))
        y = frame[self.label].to_numpy(dtype=np.float32)
        out = [x, y.reshape(-1) if len(self.label) == 1 else y]
        if self.sample_weight:
            out.append(frame[self.sample_weight].to_numpy(dtype=np.float32))
        return out

    def _blocks(self):
        client = _client()
        order = [i for i in range(len(self._parts)) if self._lengths[i] > 0]
        if client is None:
            for i in order:
                yield self._arrays(self._parts[i].compute())
            return
        futures = [client.compute(self._parts[i]) for i in order[: self.prefetch]]
        nxt = len(futures)
        while futures:
            frame = futures.pop(0).result()
            if nxt < len(order):
                futures.append(client.compute(self._parts[order[nxt]]))
                nxt += 1
            yield self._arrays(frame)

    def iter_epoch(self, steps=None):
        n = len(self) if steps is None else min(steps, len(self))
        yield from rebatch(self._blocks(), self.batch_size, n)

    def __getitem__(self, index):
        n = len(self)
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not -n <= index < n:
            raise IndexError(f"DaskDataset: batch {index!r} is out of range for {n} batches")
        start = (int(index) % n) * self.batch_size
        stop = min(start + self.batch_size, int(self._starts[-1]))
        pieces = []
        while start < stop:
            p = int(np.searchsorted(self._starts, start, side="right")) - 1
            if self._cached[0] != p:
                self._cached = (p, self._arrays(self._parts[p].compute()))
            lo = start - int(self._starts[p])
            hi = min(stop, int(self._starts[p + 1])) - int(self._starts[p])
            pieces.append([a[lo:hi] for a in self._cached[1]])
            start += hi - lo
        parts = [np.concatenate([pc[i] for pc in pieces]) for i in range(len(pieces[0]))]
        return tuple(parts)


def fit(model, ddf, label, columns=None, sample_weight=None, batch_size=32, prefetch=2, **fit_kwargs):
    """model.fit on the rows of the Dask DataFrame `ddf`, streamed partition by partition in order
    (see DaskDataset): the same weights as fitting the concatenated partitions in memory with
    shuffle=False. `label` names the target column(s); `columns` the features (default: the model's
    feature names, or every other column). Columns are checked before any task runs. Other keyword
    arguments (epochs, callbacks, validation_data, ...) go to model.fit. Returns the History."""
    labels = [label] if isinstance(label, str) else list(label)
    have = [str(c) for c in ddf.columns]
    missing = [c for c in labels + ([sample_weight] if sample_weight else []) if c not in have]
    if missing:
        raise ValueError(f"maasfin.dask.fit: the Dask DataFrame has no column(s) {missing}; it has {have}")
    features = ddf[[c for c in have if c not in labels and c != sample_weight]]
    if model.built:
        cols = feature_columns(model, features, columns, "maasfin.dask.fit")
    else:
        cols = [columns] if isinstance(columns, str) else list(columns or features.columns)
        missing = [c for c in cols if c not in have]
        if missing:
            raise ValueError(f"maasfin.dask.fit: the Dask DataFrame has no column(s) {missing}; it has {have}")
    for c in cols + labels:
        if not is_numeric_dtype(ddf.dtypes[c]):
            raise ValueError(f"maasfin.dask.fit: column {c!r} is {ddf.dtypes[c]}, not numeric")
    ds = DaskDataset(ddf, cols, labels, sample_weight, batch_size=batch_size, prefetch=prefetch)
    return model.fit(ds, **fit_kwargs)
