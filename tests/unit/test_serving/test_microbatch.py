import threading
import time

import pytest

from serving.microbatch import MicroBatcher


def _until_queued(batcher: MicroBatcher, jobs: int) -> None:
    """Wait until ``jobs`` calls wait in the batcher's queue (the worker busy with another)."""
    deadline = time.monotonic() + 5
    while batcher._queue.qsize() < jobs:
        assert time.monotonic() < deadline, f"{batcher._queue.qsize()} of {jobs} calls queued"
        time.sleep(0.001)


def test_concurrent_callers_share_batches_and_each_gets_its_own_result() -> None:
    seen: list[list[int]] = []

    def work(items):
        seen.append(list(items))
        time.sleep(0.05)  # while this batch runs, the other callers queue up
        return [i * 10 for i in items]

    batcher = MicroBatcher(work, max_items=100)
    results: dict[int, int] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, batcher.submit(i))) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batcher.close()
    assert results == {i: i * 10 for i in range(20)}
    assert sorted(i for batch in seen for i in batch) == list(range(20))  # each item once
    assert len(seen) < 20 and max(len(b) for b in seen) > 1  # batched across callers


def test_a_batch_never_holds_more_than_max_items_units() -> None:
    sizes: list[int] = []
    gate, running = threading.Event(), threading.Event()

    def work(items):
        running.set()
        gate.wait(5)
        sizes.append(sum(size for _, size in items))
        return list(items)

    batcher = MicroBatcher(work, max_items=10)
    threads = [threading.Thread(target=batcher.submit, args=((i, 4), 4)) for i in range(7)]
    threads[0].start()
    assert running.wait(5)  # the worker holds the first call at the gate
    for thread in threads[1:]:
        thread.start()
    _until_queued(batcher, 6)  # the other six wait in the queue, 24 units for batches of at most 10
    gate.set()
    for thread in threads:
        thread.join()
    batcher.close()
    assert sum(sizes) == 28 and max(sizes) <= 10


def test_an_error_reaches_every_caller_of_its_batch_and_the_batcher_goes_on() -> None:
    def work(items):
        if "bad" in items:
            raise ValueError("bad item")
        return [len(i) for i in items]

    batcher = MicroBatcher(work, max_items=5)
    with pytest.raises(ValueError, match="bad item"):
        batcher.submit("bad")
    assert batcher.submit("good") == 4
    batcher.close()


def test_close_finishes_queued_work() -> None:
    batcher = MicroBatcher(lambda items: [i + 1 for i in items], max_items=1)
    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(batcher.submit(i))) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batcher.close()
    assert sorted(results) == [1, 2, 3, 4, 5]


def test_a_job_submitted_after_close_runs_in_its_callers_thread() -> None:
    """A call that took its model just before a swap closed the model's batcher still gets
    its answer (serving/service.py ``_swap``), from its own thread."""
    threads: list[str] = []

    def work(items):
        threads.append(threading.current_thread().name)
        return [i * 10 for i in items]

    batcher = MicroBatcher(work, max_items=4, name="batcher-thread")
    assert batcher.submit(1) == 10
    batcher.close()
    assert batcher.submit(2) == 20
    assert threads == ["batcher-thread", threading.current_thread().name]


def _checked_work(log: list[str]):
    """Work in ten steps with a cancellation checkpoint between them (as the encoder has)."""
    from kinds.runtime import check_cancelled

    def work(items):
        for _ in range(10):
            check_cancelled()
            time.sleep(0.05)
        log.append("finished")
        return list(items)

    return work


def test_a_batch_whose_callers_all_ran_out_of_time_stops_at_the_next_checkpoint() -> None:
    from kinds.runtime import WorkCancelled

    log: list[str] = []
    batcher = MicroBatcher(_checked_work(log), max_items=10)
    deadline = time.monotonic() + 0.12
    started = time.monotonic()
    with pytest.raises(WorkCancelled):
        batcher.submit("late", cancelled=lambda: time.monotonic() > deadline)
    assert time.monotonic() - started < 0.3 and log == []  # stopped after 3 of 10 steps
    assert batcher.submit("next") == "next" and log == ["finished"]  # the worker goes on
    batcher.close()


def test_a_batch_with_one_caller_still_waiting_runs_to_the_end() -> None:
    log: list[str] = []
    gate, shared_started, blocking = threading.Event(), threading.Event(), threading.Event()

    def work(items):
        if "blocker" in items:
            blocking.set()
        gate.wait(5)
        if "patient" in items:
            shared_started.set()
        return _checked_work(log)(items)

    batcher = MicroBatcher(work, max_items=10)
    first = threading.Thread(target=batcher.submit, args=("blocker",))
    first.start()  # holds the worker until the gate opens; the next two queue together
    assert blocking.wait(5)
    results: dict[str, object] = {}

    def call(name: str, cancelled) -> None:
        try:
            results[name] = batcher.submit(name, cancelled=cancelled)
        except Exception as exc:  # noqa: BLE001 - the test records what each caller got
            results[name] = type(exc).__name__

    flag = threading.Event()
    waiting = [threading.Thread(target=call, args=("patient", lambda: False)),
               threading.Thread(target=call, args=("impatient", flag.is_set))]
    for thread in waiting:
        thread.start()
    _until_queued(batcher, 2)
    gate.set()
    assert shared_started.wait(5)
    flag.set()  # cancelled while its shared batch runs: the batch goes on for the other caller
    for thread in [first, *waiting]:
        thread.join(5)
    batcher.close()
    assert results == {"patient": "patient", "impatient": "impatient"}
    assert log == ["finished", "finished"]


def test_a_job_cancelled_before_its_batch_starts_is_dropped() -> None:
    seen: list[list[str]] = []
    gate, running = threading.Event(), threading.Event()

    def work(items):
        running.set()
        gate.wait(5)
        seen.append(list(items))
        return list(items)

    batcher = MicroBatcher(work, max_items=1)
    first = threading.Thread(target=batcher.submit, args=("first",))
    first.start()
    assert running.wait(5)  # the worker holds "first" at the gate
    errors: list[str] = []

    def dropped() -> None:
        try:
            batcher.submit("dropped", cancelled=lambda: True)
        except Exception as exc:  # noqa: BLE001
            errors.append(type(exc).__name__)

    second = threading.Thread(target=dropped)
    second.start()
    _until_queued(batcher, 1)  # "dropped" waits behind "first"
    gate.set()
    first.join(5)
    second.join(5)
    batcher.close()
    assert seen == [["first"]] and errors == ["WorkCancelled"]
