"""The streaming path: batches from a PyDataset or generator, checked, joined into chunks and prefetched.

fit/evaluate/predict hand the C++ batch loop whole chunks (many consecutive batches of one size,
concatenated), so the core runs its loop over arrays as it does for in-memory data, and the next
chunk is read, checked and converted on a background thread while the core works on this one
(the core releases the GIL). Memory is bounded by the prefetch depth: at most `depth` chunks
wait in the queue, plus the one being assembled and the one being trained on.
"""

from __future__ import annotations

import inspect
import queue
import threading
from collections.abc import Iterator

import numpy as np

from maasfin.streaming.pydataset import PyDataset

__all__ = ["is_stream", "StreamSource", "Chunk", "Prefetcher", "CHUNK_BYTES", "batch_parts", "check_batch"]

CHUNK_BYTES = 2 << 20  # a chunk is cut at ~2 MB of input: big enough to amortise a core call
_DONE = object()


def is_stream(x) -> bool:
    """Whether fit/evaluate/predict should stream `x`: a PyDataset, a generator or another iterator."""
    if isinstance(x, PyDataset) or inspect.isgenerator(x):
        return True
    return isinstance(x, Iterator) and not isinstance(x, (str, bytes, dict, list, tuple, np.ndarray))


class StreamSource:
    """One stream's batches epoch after epoch. A PyDataset is read anew each epoch (`iter_epoch`),
    a generator is one iterator that each epoch continues (`steps` batches, or to its end)."""

    def __init__(self, x, steps, what: str):
        self.what = what
        self.dataset = x if isinstance(x, PyDataset) else None
        self._iterator = None if self.dataset is not None else x
        self.exhausted = False
        if self.dataset is not None:
            n = len(self.dataset)
            if not isinstance(n, (int, np.integer)) or n < 0:
                raise ValueError(f"{what}: len() of {type(x).__name__} must be a non-negative integer, got {n!r}")
            self.steps = n if steps is None else min(int(steps), int(n))
        else:
            self.steps = None if steps is None else int(steps)
        self.feature_names = getattr(x, "feature_names", None)
        self._peeked: list = []

    def peek(self):
        """The first batch, without consuming it (a generator's item is kept for the epoch)."""
        if self.dataset is not None:
            if self.steps == 0:
                raise ValueError(f"{self.what}: the dataset has no batches")
            return self.dataset[0]
        if not self._peeked:
            try:
                self._peeked.append(next(self._iterator))
            except StopIteration:
                raise ValueError(f"{self.what}: the generator yielded no batches") from None
        return self._peeked[0]

    def epoch(self) -> Iterator:
        """The batches of the next epoch."""
        if self.dataset is not None:
            self.dataset.on_epoch_begin()
            yield from self.dataset.iter_epoch(self.steps)
            return
        k = 0
        while self.steps is None or k < self.steps:
            try:
                item = self._peeked.pop() if self._peeked else next(self._iterator)
            except StopIteration:
                self.exhausted = True
                return
            k += 1
            yield item

    def end_epoch(self) -> None:
        if self.dataset is not None:
            self.dataset.on_epoch_end()


def batch_parts(item, k: int, what: str) -> tuple:
    """(x, y, sample_weight) of one batch: x, (x,), (x, y) or (x, y, sample_weight), as Keras."""
    if isinstance(item, tuple):
        if not 1 <= len(item) <= 3:
            raise ValueError(
                f"{what}: batch {k} is a tuple of {len(item)} items; "
                "a batch is x, (x,), (x, y) or (x, y, sample_weight)"
            )
        return tuple(item) + (None,) * (3 - len(item))
    return item, None, None


def _describe(part):
    """(kind, per-row shape, dtype kind, rows) of a batch part, for the consistency checks."""
    if part is None:
        return ("none", None, None, None)
    if hasattr(part, "columns") and hasattr(part, "iloc"):  # a DataFrame
        return ("frame", tuple(str(c) for c in part.columns), None, len(part))
    if isinstance(part, dict):
        shapes = {k: _describe(v) for k, v in part.items()}
        rows = {s[3] for s in shapes.values()}
        return (
            "dict",
            tuple((k, s[1], s[2]) for k, s in sorted(shapes.items())),
            None,
            rows.pop() if len(rows) == 1 else -1,
        )
    if isinstance(part, (list, tuple)) and part and all(hasattr(a, "shape") for a in part):
        shapes = [_describe(a) for a in part]
        rows = {s[3] for s in shapes}
        return ("list", tuple((s[1], s[2]) for s in shapes), None, rows.pop() if len(rows) == 1 else -1)
    arr = np.asarray(part)
    if arr.ndim == 0:
        return ("array", (), arr.dtype.kind, -1)
    return ("array", tuple(arr.shape[1:]), arr.dtype.kind, arr.shape[0])


def _shape_text(desc, rows) -> str:
    kind, shape, dtype, _ = desc
    if kind == "array":
        return f"({rows}, {', '.join(str(d) for d in shape)})".replace(", )", ")") + f" of dtype kind '{dtype}'"
    if kind == "frame":
        return f"a DataFrame with columns {list(shape)}"
    return f"{kind} {shape}"


def _join(parts: list):
    """Concatenates the same part of consecutive batches along rows."""
    first = parts[0]
    if first is None:
        return None
    if len(parts) == 1:
        return first
    if hasattr(first, "columns") and hasattr(first, "iloc"):
        import pandas as pd

        return pd.concat(parts, ignore_index=True)
    if isinstance(first, dict):
        return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in first}
    if isinstance(first, (list, tuple)) and first and all(hasattr(a, "shape") for a in first):
        return [np.concatenate([np.asarray(p[i]) for p in parts]) for i in range(len(first))]
    return np.concatenate([np.asarray(p) for p in parts])


def check_batch(k: int, parts: tuple, reference, what: str) -> tuple[int, list]:
    """(rows, descriptions) of batch k's (x, y, sample_weight): x, y and the weights must have the
    same row count, and per-row shapes, dtypes and columns must match batch 0's `reference`."""
    descs = [_describe(p) for p in parts]
    if descs[0][0] == "none":
        raise ValueError(f"{what}: batch {k} has no x")
    rows = descs[0][3]
    if rows is None or rows < 0:
        raise ValueError(f"{what}: batch {k} has inputs of different row counts or no batch dimension")
    for name, d in zip(("y", "sample_weight"), descs[1:]):
        if d[0] != "none" and d[3] != rows:
            raise ValueError(f"{what}: batch {k} has {rows} rows of x but {d[3]} rows of {name}")
    for name, d, ref in zip(("x", "y", "sample_weight"), descs, reference or ()):
        if (d[0], d[1], d[2]) != (ref[0], ref[1], ref[2]):
            raise ValueError(
                f"{what}: batch {k} has {name} of {_shape_text(d, d[3])} but batch 0 had "
                f"{_shape_text(ref, ref[3])}; every batch needs the same per-row shape and dtype"
            )
    return rows, descs


class Chunk:
    """Consecutive batches of one size joined: `first` is the index of its first batch in the epoch."""

    def __init__(self, first: int, batch_rows: int, n_batches: int, rows: int, converted):
        self.first, self.batch_rows, self.n_batches, self.rows = first, batch_rows, n_batches, rows
        self.converted = converted


class Prefetcher:
    """Reads one epoch of `source` on a background thread: checks every batch against batch 0
    (per-row shapes, dtypes, columns; row counts of x, y and weights), joins runs of equal-size
    batches into chunks of about `chunk_bytes`, converts each chunk with `convert(x, y, w)` (the
    model's data boundary) and queues at most `depth` of them. Iterate it for Chunks; errors of
    the reader are raised in the consumer; `close()` stops the reader early."""

    def __init__(self, source: StreamSource, convert, depth: int = 2, chunk_bytes: int = CHUNK_BYTES, reference=None):
        self.source, self.convert, self.chunk_bytes = source, convert, chunk_bytes
        self.reference = reference  # descriptions of batch 0 of an earlier epoch
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="maasfin-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            pending: list = []
            pending_rows = pending_bytes = 0
            first = 0
            for k, item in enumerate(self.source.epoch()):
                if self._stop.is_set():
                    return
                parts = batch_parts(item, k, self.source.what)
                rows = self._check(k, parts)
                if pending and (rows != pending_rows or pending_bytes >= self.chunk_bytes):
                    if not self._flush(pending, first, pending_rows):
                        return
                    first += len(pending)
                    pending, pending_bytes = [], 0
                pending.append(parts)
                pending_rows = rows
                pending_bytes += sum(getattr(p, "nbytes", 0) for p in parts if p is not None) or rows * 64
            if pending and not self._flush(pending, first, pending_rows):
                return
            self._put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(exc)

    def _flush(self, pending: list, first: int, batch_rows: int) -> bool:
        joined = [_join([p[i] for p in pending]) for i in range(3)]
        converted = self.convert(*joined)
        rows = (len(pending) - 1) * batch_rows + _describe(pending[-1][0])[3]
        return self._put(Chunk(first, batch_rows, len(pending), rows, converted))

    def _check(self, k: int, parts: tuple) -> int:
        rows, descs = check_batch(k, parts, self.reference, self.source.what)
        if self.reference is None:
            self.reference = descs
        return rows

    def __iter__(self):
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
