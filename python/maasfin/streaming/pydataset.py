"""PyDataset: Keras 3's base class for datasets served batch by batch (__len__, __getitem__, on_epoch_end)."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from collections import deque

import numpy as np

__all__ = ["PyDataset", "rebatch"]


def _positive(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"PyDataset: {name} must be a positive integer, got {value!r}")
    return value


class PyDataset:
    """Base class for Python datasets, with Keras 3's semantics.

    Subclasses implement `__len__` (the number of batches per epoch) and `__getitem__(index)`,
    returning one batch: `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`. `on_epoch_end` runs
    after every epoch (shuffle there). Pass the constructor's keyword arguments from a subclass's
    `__init__` (`super().__init__(**kwargs)`):

    - workers: how many batches are fetched concurrently (threads, or processes with
      use_multiprocessing=True; a process pool pickles the dataset and starts with "spawn", so the
      dataset's class must be importable);
    - max_queue_size: at most this many batches are fetched ahead of the training loop.

    Batches arrive in index order whatever the number of workers.
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self._workers = _positive(workers, "workers")
        if not isinstance(use_multiprocessing, bool):
            raise ValueError(f"PyDataset: use_multiprocessing must be True or False, got {use_multiprocessing!r}")
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = _positive(max_queue_size, "max_queue_size")

    # Keras reads these as properties; a subclass that skipped super().__init__ gets the defaults.
    @property
    def workers(self) -> int:
        return getattr(self, "_workers", 1)

    @workers.setter
    def workers(self, value) -> None:
        self._workers = _positive(value, "workers")

    @property
    def use_multiprocessing(self) -> bool:
        return getattr(self, "_use_multiprocessing", False)

    @use_multiprocessing.setter
    def use_multiprocessing(self, value) -> None:
        self._use_multiprocessing = bool(value)

    @property
    def max_queue_size(self) -> int:
        return getattr(self, "_max_queue_size", 10)

    @max_queue_size.setter
    def max_queue_size(self, value) -> None:
        self._max_queue_size = _positive(value, "max_queue_size")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__(index) returning one batch")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__() (batches per epoch)")

    @property
    def num_batches(self) -> int | None:
        """Batches per epoch (Keras 3's name): len(self)."""
        return len(self)

    def on_epoch_begin(self) -> None:
        """Called before each epoch."""

    def on_epoch_end(self) -> None:
        """Called after each epoch (Keras 3: shuffle the dataset's order here)."""

    def iter_epoch(self, steps: int | None = None):
        """The batches of one epoch in order: `steps` of them (default all), fetched by `workers`
        threads or processes with at most `max_queue_size` in flight. Subclasses that read their
        data sequentially (files, partitions) may override this with a cheaper sequential read."""
        n = len(self) if steps is None else min(steps, len(self))
        if self.workers == 1 and not self.use_multiprocessing:
            for i in range(n):
                yield self[i]
            return
        if self.use_multiprocessing:
            # The dataset is pickled once per process (initializer), not once per batch.
            pool = concurrent.futures.ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_set_process_dataset,
                initargs=(self,),
            )
            fetch = _fetch_in_process
            args = lambda i: (i,)  # noqa: E731
        else:
            pool = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="maasfin-pydataset")
            fetch = self.__getitem__
            args = lambda i: (i,)  # noqa: E731
        window: deque = deque()
        try:
            nxt = 0
            for i in range(n):
                while nxt < n and len(window) < self.max_queue_size:
                    window.append(pool.submit(fetch, *args(nxt)))
                    nxt += 1
                yield window.popleft().result()
        finally:
            for f in window:
                f.cancel()
            pool.shutdown(wait=True, cancel_futures=True)


def rebatch(blocks, batch_size: int, steps: int):
    """Batches of exactly `batch_size` rows (the last one shorter) from `blocks`, an iterator of
    lists of equal-length arrays (x, y, weights) of any lengths: row groups, partitions. A batch
    is a tuple of slices (or x alone); a batch that spans two blocks is joined. Stops after `steps`."""
    done, carry = 0, None
    for parts in blocks:
        if done >= steps:
            return
        if carry is not None:
            parts = [np.concatenate([c, p]) for c, p in zip(carry, parts)]
            carry = None
        rows, start = len(parts[0]), 0
        while rows - start >= batch_size and done < steps:
            batch = [p[start : start + batch_size] for p in parts]
            yield batch[0] if len(batch) == 1 else tuple(batch)
            start, done = start + batch_size, done + 1
        if start < rows and done < steps:
            carry = [p[start:].copy() for p in parts]
    if carry is not None and done < steps:
        yield carry[0] if len(carry) == 1 else tuple(carry)


_PROCESS_DATASET: list = []


def _set_process_dataset(dataset) -> None:
    _PROCESS_DATASET[:] = [dataset]


def _fetch_in_process(index):
    return _PROCESS_DATASET[0][index]
