"""Group commit for enforcement, in a process of its own.

A scoring call's event (a chunk of a live room, a listing call's blocks, a merchant call's
holds) must be committed, with its decision records, before the call is answered. The worker's
writer thread takes every call queued while the previous batch was being written and hands the
batch to the worker's **enforcement process**, which applies it in one transaction
(``EnforcementStore.apply_calls``: the batch's entities locked and read once, each call checked
and applied in order, what changed written at the end) and returns each call's answer.

Why a process: every database statement releases Python's interpreter lock, and taking it back
behind a dozen scoring threads costs milliseconds; measured on 2 cores, a batch's transaction
held the database for about 40 ms in the worker's process against 5 ms in a process of its
own, and the whole database waits for it (``benchmarks/stream_throughput.py --enforcement``).

A caller that stops waiting withdraws its call if it has not been handed over (nothing is
counted); once handed over, it waits for the outcome. A process that dies fails its batch
(503, nothing answered) and is started again for the next.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policy.state import Event
from policy.store import CallWork, ChunkAnswer, EnforcementConflict, EnforcementStore
from serving.health import StorageStatus

logger = logging.getLogger("shopguard.enforcement")
QUEUED, TAKEN, WITHDRAWN = "queued", "taken", "withdrawn"


class EnforcementUnavailable(RuntimeError):
    """The call's enforcement could not be committed: it is not answered (503)."""


@dataclass
class _Pending:
    work: CallWork
    done: threading.Event = field(default_factory=threading.Event)
    result: ChunkAnswer | BaseException | None = None
    state: str = QUEUED


def enforcement_process(connection: Any, database_url: str, policy_path: str | None) -> None:
    """The enforcement process: apply each batch received, send back each call's result."""
    from database.engine import make_engine
    from policy.document import load_policy
    from serving.decision_log import write_records
    from serving.process import die_with_parent

    die_with_parent()
    store = EnforcementStore(make_engine(database_url, immediate=True),
                             load_policy(Path(policy_path) if policy_path else None),
                             read_engine=make_engine(database_url), record_writer=write_records)
    while True:
        try:
            works = connection.recv()
        except EOFError:
            return
        if works is None:
            return
        try:
            results = store.apply_calls(works)
            connection.send([_wire(r) for r in results])
        except Exception as exc:  # the batch failed (database unavailable): every call of it answers 503
            connection.send(("failed", f"{type(exc).__name__}: {exc}"))


def _wire(result: ChunkAnswer | EnforcementConflict) -> tuple[str, Any]:
    if isinstance(result, EnforcementConflict):
        return ("conflict", (str(result), result.field))
    return ("repeated", result.repeated) if result.repeated is not None else ("added", result.added)


def _unwire(item: tuple[str, Any]) -> ChunkAnswer | EnforcementConflict:
    tag, value = item
    if tag == "conflict":
        return EnforcementConflict(*value)
    return ChunkAnswer(repeated=value) if tag == "repeated" else ChunkAnswer(added=value)


class EnforcementWriter:
    """Applies queued scoring calls in batches, through the worker's enforcement process."""

    def __init__(self, database_url: str, policy_path: str | None, max_batch: int = 64,
                 wait_seconds: float = 20.0, batch_seconds: float = 30.0) -> None:
        self.database_url, self.policy_path = database_url, policy_path
        self.max_batch, self.wait_seconds, self.batch_seconds = max_batch, wait_seconds, batch_seconds
        self._context = multiprocessing.get_context("spawn")  # a fresh interpreter: no threads, no models
        self._process: Any = None
        self._connection: Any = None
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._claims = threading.Lock()
        self._closed = False
        self.batches = 0
        self.storage = StorageStatus()  # why batches fail to commit now, for /readyz
        self._start_process()
        self._thread = threading.Thread(target=self._run, name="enforcement-writer", daemon=True)
        self._thread.start()

    def _start_process(self) -> None:
        parent, child = self._context.Pipe()
        self._process = self._context.Process(target=enforcement_process, name="shopguard-enforcement",
                                              args=(child, self.database_url, self.policy_path), daemon=True)
        self._process.start()
        child.close()
        self._connection = parent

    def submit(self, event: Event, segments_sha256: str | None, answer_json: str,
               records: tuple[Any, ...] = ()) -> ChunkAnswer:
        """Apply a call's event (with its decision ``records``, in the same transaction) and
        return what enforcement adds to its answer (``answer_json``: the answer so far, stored
        whole with a chunk) once committed, or a repeated chunk's first answer; raises the
        call's own ``EnforcementConflict`` or ``EnforcementUnavailable``."""
        if self._closed or not self._thread.is_alive():
            raise EnforcementUnavailable("the enforcement writer has stopped")
        pending = _Pending(CallWork(event, segments_sha256, answer_json, records))
        self._queue.put(pending)
        if not pending.done.wait(self.wait_seconds):
            with self._claims:
                if pending.state == QUEUED:
                    pending.state = WITHDRAWN
                    raise EnforcementUnavailable(f"not applied within {self.wait_seconds:.0f}s")
            pending.done.wait()  # handed over: the batch's own timeout ends it
        if isinstance(pending.result, BaseException):
            raise pending.result
        assert pending.result is not None
        return pending.result

    def _take(self, pending: _Pending) -> bool:
        with self._claims:
            if pending.state == WITHDRAWN:
                return False
            pending.state = TAKEN
            return True

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(item)
            taken = [p for p in batch if self._take(p)]
            if taken:
                self._write(taken)

    def _write(self, batch: list[_Pending]) -> None:
        results: list[Any]
        try:
            self._connection.send([p.work for p in batch])
            if not self._connection.poll(self.batch_seconds):
                raise TimeoutError(f"no answer within {self.batch_seconds:.0f}s")
            reply = self._connection.recv()
            if isinstance(reply, tuple) and reply[0] == "failed":
                if cause := self.storage.failed(reply[1]):
                    logger.warning("enforcement batches not committed (%s): their calls answer 503", cause)
                results = [EnforcementUnavailable(reply[1])] * len(batch)
            else:
                self.storage.stored()
                results = [_unwire(item) for item in reply]
        except (OSError, EOFError, TimeoutError) as exc:  # the process died or hung: a fresh one for the next
            logger.error("the enforcement process failed (%s); starting a new one", exc)
            results = [EnforcementUnavailable(f"the enforcement process failed: {exc}")] * len(batch)
            self._restart()
        self.batches += 1
        for pending, result in zip(batch, results, strict=True):
            pending.result = result
            pending.done.set()

    def _restart(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        if not self._closed:
            self._start_process()

    def alive(self) -> bool:
        """Whether the thread and the process run."""
        return self._thread.is_alive() and self._process is not None and self._process.is_alive()

    def close(self, timeout: float = 30.0) -> None:
        """Apply what is queued, then stop the thread and the process."""
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
        with contextlib.suppress(OSError):
            self._connection.send(None)
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
