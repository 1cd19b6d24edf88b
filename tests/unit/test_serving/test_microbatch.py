import threading
import time

import pytest

from serving.microbatch import MicroBatcher


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
    gate = threading.Event()

    def work(items):
        gate.wait(5)
        sizes.append(sum(size for _, size in items))
        return list(items)

    batcher = MicroBatcher(work, max_items=10)
    threads = [threading.Thread(target=batcher.submit, args=((i, 4), 4)) for i in range(7)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
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
