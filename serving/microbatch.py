"""Batching across requests: one worker thread runs the model for every caller.

A call waits while the batch before it runs; everything that queued in the meantime goes into
the next batch (up to ``max_items`` units, such as segments), so under load batches grow by
themselves and an idle service adds no wait. ``max_wait_s`` > 0 additionally holds a batch
open that long for more callers (more throughput, more latency).

A caller may pass ``cancelled`` (its time budget ran out): a job already cancelled when its
batch starts is dropped with ``WorkCancelled``, and a batch whose callers are all cancelled
stops at the work's next checkpoint (``kinds.runtime.check_cancelled``). A
batch with one caller still waiting runs to the end, so every caller's wait ends when the
work it waits for has stopped.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from kinds.runtime import WorkCancelled, cancel_scope

Item = TypeVar("Item")
Result = TypeVar("Result")


def _never() -> bool:
    return False


@dataclass
class _Job(Generic[Item, Result]):
    item: Item
    size: int
    cancelled: Callable[[], bool] = _never
    future: Future[Result] = field(default_factory=Future)


class MicroBatcher(Generic[Item, Result]):
    """Runs ``work(items) -> results`` (one result per item, in order) in batches."""

    def __init__(self, work: Callable[[Sequence[Item]], Sequence[Result]], max_items: int,
                 max_wait_s: float = 0.0, name: str = "microbatch") -> None:
        if max_items < 1 or max_wait_s < 0:
            raise ValueError("max_items must be >= 1 and max_wait_s >= 0")
        self.work, self.max_items, self.max_wait_s = work, max_items, max_wait_s
        self._queue: queue.Queue[_Job[Item, Result] | None] = queue.Queue()
        self._closing = threading.Lock()
        self._closed = False
        self.batches = 0
        self.items = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: Item, size: int = 1, cancelled: Callable[[], bool] = _never) -> Result:
        """Run ``item`` in the next batch and return its result (or raise the batch's error,
        ``WorkCancelled`` when ``cancelled()`` stopped it)."""
        job: _Job[Item, Result] = _Job(item, size, cancelled)
        with self._closing:
            queued = not self._closed
            if queued:
                self._queue.put(job)
        if not queued:  # closed (its model swapped out): the caller's thread runs the job
            self._execute([job])
        return job.future.result()

    def close(self) -> None:
        """Finish the queued work and stop the worker thread; a later ``submit`` runs in
        its caller's thread."""
        with self._closing:
            self._closed = True
            self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        pending: _Job[Item, Result] | None = None
        closing = False
        while True:
            if pending is None and (closing or (pending := self._queue.get()) is None):
                return
            batch, pending, saw_close = self._collect(pending)
            closing = closing or saw_close
            self._execute(batch)

    def _collect(self, first: _Job[Item, Result]
                 ) -> tuple[list[_Job[Item, Result]], _Job[Item, Result] | None, bool]:
        """The batch starting with ``first``; the job that did not fit (first of the next
        batch); whether ``close`` was called."""
        batch, total = [first], first.size
        deadline = time.monotonic() + self.max_wait_s
        while total < self.max_items:
            try:
                remaining = deadline - time.monotonic()
                job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return batch, None, True
            if total + job.size > self.max_items:
                return batch, job, False
            batch.append(job)
            total += job.size
        return batch, None, False

    def _execute(self, batch: list[_Job[Item, Result]]) -> None:
        for job in [job for job in batch if job.cancelled()]:
            job.future.set_exception(WorkCancelled("cancelled before its batch started"))
            batch.remove(job)
        if not batch:
            return
        try:
            with cancel_scope(lambda: all(job.cancelled() for job in batch)):
                results = self.work([job.item for job in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"batch work returned {len(results)} results for {len(batch)} items")
        except BaseException as exc:  # every caller of the batch gets the error
            for job in batch:
                job.future.set_exception(exc)
            return
        self.batches += 1
        self.items += sum(job.size for job in batch)
        for job, result in zip(batch, results, strict=True):
            job.future.set_result(result)
