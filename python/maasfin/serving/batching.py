"""Adaptive batching: concurrent requests for one model version merged into one predict call.

Policy (per model version):
- an idle model runs a request at once: a lone request never waits for company;
- while predicts are in flight, arriving requests queue; the next batch leaves when a predict slot
  is free and either `max_batch_size` rows are queued or the oldest request has waited
  `max_latency_ms` (the latency a request may give up so that others can join it);
- a request with more rows than `max_batch_size` runs alone, in chunks of `chunk_rows` rows (its
  predictions are those of one call: inference is batch-invariant): one chunk of all the
  large requests of a version is queued or running at a time, the large requests taking turns
  chunk by chunk, and the small requests' batches go between the chunks. A one-row request behind
  a 1,000,000-row one therefore waits for at most one chunk (a few milliseconds), not the whole
  request;
- at most `max_concurrency` predicts per version run at once, in a thread pool shared by all
  models (predict releases the GIL, so the event loop keeps serving);
- `max_queue` bounds the queued requests: beyond it a request is refused at once (503), never
  left to hang;
- a merged batch whose predict raises is run again one request at a time, so that one client's
  bad input (an index out of an Embedding's range, say) fails only that client's request.

A row's prediction never depends on the batch it was merged into: inference is batch-invariant
(see tiling.py).

Hand-written: the ASGI libraries have no batching primitive; this is a few dozen lines of asyncio.
"""

from __future__ import annotations

import asyncio
import collections
import time

import numpy as np

from maasfin.serving.errors import RequestError


class _Item:
    __slots__ = ("xs", "rows", "future", "t")

    def __init__(self, xs, rows, future, t):
        self.xs, self.rows, self.future, self.t = xs, rows, future, t


class Batcher:
    def __init__(
        self,
        predict,
        executor,
        max_batch_size: int = 256,
        max_latency_ms: float = 2.0,
        max_concurrency: int = 2,
        max_queue: int = 4096,
        on_batch=None,
        chunk_rows: int = 4096,
    ):
        self._predict = predict  # predict(xs: list[np.ndarray]) -> np.ndarray, run in `executor`
        self._executor = executor
        self.max_rows = int(max_batch_size)
        self.max_latency = float(max_latency_ms) / 1000.0
        self.max_concurrency = int(max_concurrency)
        self.max_queue = int(max_queue)
        self._on_batch = on_batch  # on_batch(rows, requests) after each batch
        self.chunk_rows = int(chunk_rows)
        self._large_lane: asyncio.Semaphore | None = None  # one chunk of the large requests at a time
        self._queue: collections.deque[_Item] = collections.deque()
        self._queued_rows = 0
        self._inflight = 0
        self._event: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._closed = False

    async def submit(self, xs: list[np.ndarray]) -> np.ndarray:
        """The predictions for `xs` (validated float32 arrays with the same number of rows)."""
        if self._closed:
            raise RequestError(503, "this model version is being unloaded; retry the request")
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._event = asyncio.Event()
            self._task = loop.create_task(self._run())
        if len(self._queue) >= self.max_queue:
            raise RequestError(
                503,
                f"the server is overloaded ({len(self._queue)} requests queued for this model); retry later",
                {"Retry-After": "1"},
            )
        if xs[0].shape[0] > self.max_rows:
            return await self._submit_large(xs)
        item = _Item(xs, xs[0].shape[0], loop.create_future(), time.monotonic())
        self._queue.append(item)
        self._queued_rows += item.rows
        self._event.set()
        return await item.future

    async def _submit_large(self, xs: list[np.ndarray]) -> np.ndarray:
        """A request of more than `max_batch_size` rows, predicted chunk by chunk in the large
        requests' lane (one chunk at a time per version, in turn with the other large requests)."""
        if self._large_lane is None:
            self._large_lane = asyncio.Semaphore(1)
        loop = asyncio.get_running_loop()
        n, step = xs[0].shape[0], self.chunk_rows
        parts = []
        for start in range(0, n, step):
            if self._closed:
                raise RequestError(503, "this model version is being unloaded; retry the request")
            chunk = [x[start : start + step] for x in xs] if n > step else xs
            async with self._large_lane:
                parts.append(await loop.run_in_executor(self._executor, self._predict, chunk))
        if self._on_batch is not None:
            self._on_batch(n, 1)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def close(self) -> None:
        """Stops the dispatcher; queued requests (there are none once a version is idle) fail with 503."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(RequestError(503, "this model version was unloaded; retry the request"))

    async def _wait(self, timeout: float | None) -> None:
        self._event.clear()
        if timeout is None:
            await self._event.wait()
            return
        if timeout <= 0:
            return
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._queue:
                await self._wait(None)
            deadline = self._queue[0].t + self.max_latency
            while self._queued_rows < self.max_rows:
                free = self._inflight < self.max_concurrency
                now = time.monotonic()
                if free and (self._inflight == 0 or now >= deadline):
                    break
                await self._wait(deadline - now if free else None)
                if not self._queue:
                    break
            while self._inflight >= self.max_concurrency:
                await self._wait(None)
            batch = self._take()
            if batch:
                self._inflight += 1
                loop.create_task(self._execute(batch))

    def _take(self) -> list[_Item]:
        batch, rows = [], 0
        while self._queue:
            item = self._queue[0]
            if item.future.done():  # cancelled (request timed out or client gone)
                self._queue.popleft()
                self._queued_rows -= item.rows
                continue
            if batch and rows + item.rows > self.max_rows:
                break
            self._queue.popleft()
            self._queued_rows -= item.rows
            batch.append(item)
            rows += item.rows
            if rows >= self.max_rows:
                break
        return batch

    async def _execute_alone(self, batch: list[_Item]) -> None:
        """Runs each request of a failed merged batch on its own, so that only the request whose
        input made the predict fail gets the error and the others get their predictions."""
        loop = asyncio.get_running_loop()
        for it in batch:
            if it.future.done():
                continue
            try:
                y = await loop.run_in_executor(self._executor, self._predict, it.xs)
            except Exception as e:  # noqa: BLE001 - this request's own failure
                if not it.future.done():
                    it.future.set_exception(e)
                continue
            if not it.future.done():
                it.future.set_result(y)
            if self._on_batch is not None:
                self._on_batch(it.rows, 1)

    async def _execute(self, batch: list[_Item]) -> None:
        loop = asyncio.get_running_loop()
        try:
            if len(batch) == 1:
                xs = batch[0].xs
            else:
                xs = [np.concatenate([it.xs[k] for it in batch]) for k in range(len(batch[0].xs))]
            y = await loop.run_in_executor(self._executor, self._predict, xs)
        except Exception as e:  # noqa: BLE001 - one request's input may have failed the merged batch
            if len(batch) == 1:
                if not batch[0].future.done():
                    batch[0].future.set_exception(e)
            else:
                await self._execute_alone(batch)
        except BaseException as e:  # cancelled: handed to every waiting request
            for it in batch:
                if not it.future.done():
                    it.future.set_exception(RuntimeError(str(e)))
            raise
        else:
            offset = 0
            for it in batch:
                if not it.future.done():
                    it.future.set_result(y[offset : offset + it.rows])
                offset += it.rows
            if self._on_batch is not None:
                self._on_batch(offset, len(batch))
        finally:
            self._inflight -= 1
            if self._event is not None:
                self._event.set()
