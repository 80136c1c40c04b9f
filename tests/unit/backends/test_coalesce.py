"""Coalescer: lone calls run alone, queued calls are batched, errors reach their caller."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from secretkit.backends._coalesce import Coalescer
from secretkit.errors import BackendInvalidRequest, BackendUnavailable


def test_lone_calls_are_not_batched() -> None:
    batches: list[int] = []

    def one(x: int) -> int:
        return x * 2

    def batch(xs: Sequence[int]) -> list[int | BaseException]:
        batches.append(len(xs))
        return [x * 2 for x in xs]

    co: Coalescer[int, int] = Coalescer(one, batch)
    assert [co.submit(i) for i in range(5)] == [0, 2, 4, 6, 8]
    assert batches == [] and co.batches == 0


def test_queued_calls_are_batched_with_per_item_errors() -> None:
    gate = threading.Event()
    batches: list[list[int]] = []

    def one(x: int) -> int:
        gate.wait(5)  # the first (lone) call holds the only slot while others queue
        if x < 0:
            raise BackendInvalidRequest("negative")
        return x * 10

    def batch(xs: Sequence[int]) -> list[int | BaseException]:
        batches.append(list(xs))
        return [BackendInvalidRequest(f"bad item {x}") if x < 0 else x * 10 for x in xs]

    co: Coalescer[int, int] = Coalescer(one, batch, max_items=8, max_inflight=1)
    inputs = [1, 2, -3, 4, 5, 6, -7, 8, 9, 10]

    def call(x: int) -> int | str:
        try:
            return co.submit(x)
        except BackendInvalidRequest as exc:
            return exc.what

    with ThreadPoolExecutor(len(inputs)) as pool:
        first = pool.submit(call, inputs[0])
        while co._inflight == 0:  # wait until the first call holds the slot
            threading.Event().wait(0.001)
        rest = [pool.submit(call, x) for x in inputs[1:]]
        while len(co._pending) < len(inputs) - 1:
            threading.Event().wait(0.001)
        gate.set()
        results = [first.result()] + [f.result() for f in rest]
    assert results[0] == 10
    for x, res in zip(inputs[1:], results[1:], strict=True):
        assert res == (f"bad item {x}" if x < 0 else x * 10)
    # 9 queued, max_items 8: one batch of 8, then the last one alone via run_one
    assert [len(b) for b in batches] == [8] and co.batches == 1
    assert set(batches[0]) < set(inputs[1:])


def test_a_failed_batch_fails_every_caller_with_its_own_copy() -> None:
    gate = threading.Event()

    def one(x: int) -> int:
        gate.wait(5)
        return x

    def batch(xs: Sequence[int]) -> list[int | BaseException]:
        raise BackendUnavailable("vault is down", where="http://127.0.0.1:1")

    co: Coalescer[int, int] = Coalescer(one, batch, max_inflight=1)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def call(x: int) -> None:
        try:
            co.submit(x)
        except BackendUnavailable as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    threads[0].start()
    while co._inflight == 0:
        threading.Event().wait(0.001)
    for t in threads[1:]:
        t.start()
    while len(co._pending) < 3:
        threading.Event().wait(0.001)
    gate.set()
    for t in threads:
        t.join(5)
    assert len(errors) == 3
    assert len({id(e) for e in errors}) == 3
    assert all(e.where == "http://127.0.0.1:1" for e in errors)


def test_exceptions_from_lone_calls_propagate() -> None:
    def one(x: int) -> int:
        raise BackendInvalidRequest("nope")

    co: Coalescer[int, int] = Coalescer(one, lambda xs: [])
    with pytest.raises(BackendInvalidRequest):
        co.submit(1)
    assert co._inflight == 0
