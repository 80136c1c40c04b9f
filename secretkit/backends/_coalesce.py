"""Coalesce concurrent calls into batches without adding latency to lone calls.

Leader/follower "group commit": a caller that finds a free in-flight slot runs its
request at once (alone, no timer). Callers that arrive while every slot is busy
queue up; when a running call finishes, the first queued caller becomes the next
leader and takes up to ``max_items`` queued requests into one batch call. Under
load the batch size grows with the backlog; at low load every call is a single
call. Each caller gets its own result or its own exception.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from secretkit.errors import SecretkitError

P = TypeVar("P")
R = TypeVar("R")


class _Signal:
    """A one-shot wake-up: set once, waited once (a held lock; cheaper than an Event)."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def set(self) -> None:
        self._lock.release()

    def wait(self) -> None:
        self._lock.acquire()


class _Waiter(Generic[P, R]):
    __slots__ = ("error", "event", "lead", "payload", "result")

    def __init__(self, payload: P) -> None:
        self.payload = payload
        self.event = _Signal()
        self.lead = False
        self.result: R | None = None
        self.error: BaseException | None = None


def copy_error(exc: BaseException) -> BaseException:
    """A fresh instance of a shared error, so threads never share one traceback."""
    if isinstance(exc, SecretkitError):
        clone = type(exc)(exc.what, where=exc.where, hint=exc.hint)
        clone.__cause__ = exc.__cause__
        return clone
    return exc


class Coalescer(Generic[P, R]):
    """Runs ``run_one`` for lone requests and ``run_batch`` for queued ones.

    ``run_batch`` returns one result or one exception per payload, in order; if it
    raises, every caller in that batch gets (a copy of) the exception.
    """

    def __init__(
        self,
        run_one: Callable[[P], R],
        run_batch: Callable[[Sequence[P]], Sequence[R | BaseException]],
        *,
        max_items: int = 64,
        max_inflight: int = 4,
    ) -> None:
        self._run_one = run_one
        self._run_batch = run_batch
        self._max_items = max(1, max_items)
        self._max_inflight = max(1, max_inflight)
        self._lock = threading.Lock()
        self._pending: deque[_Waiter[P, R]] = deque()
        self._inflight = 0
        #: number of batch calls made (len > 1); for tests and metrics
        self.batches = 0

    def submit(self, payload: P) -> R:
        """Run ``payload`` (maybe batched with others) and return its result."""
        me: _Waiter[P, R] = _Waiter(payload)
        with self._lock:
            if self._inflight < self._max_inflight and not self._pending:
                self._inflight += 1
                me.lead = True
            else:
                self._pending.append(me)
        if not me.lead:
            me.event.wait()
            if not me.lead:
                return self._outcome(me)
        # leader: our slot is counted in _inflight
        with self._lock:
            group = [me]
            while self._pending and len(group) < self._max_items:
                group.append(self._pending.popleft())
        try:
            self._execute(group)
        finally:
            with self._lock:
                if self._pending:
                    nxt = self._pending.popleft()
                    nxt.lead = True  # hand our in-flight slot over
                    nxt.event.set()
                else:
                    self._inflight -= 1
        return self._outcome(me)

    def _execute(self, group: list[_Waiter[P, R]]) -> None:
        try:
            if len(group) == 1:
                try:
                    group[0].result = self._run_one(group[0].payload)
                except BaseException as exc:
                    group[0].error = exc
                return
            self.batches += 1
            try:
                outcomes = list(self._run_batch([w.payload for w in group]))
                if len(outcomes) != len(group):
                    raise RuntimeError("batch returned the wrong number of results")
            except BaseException as exc:
                for w in group:
                    w.error = copy_error(exc)
                return
            for w, out in zip(group, outcomes, strict=True):
                if isinstance(out, BaseException):
                    w.error = out
                else:
                    w.result = out
        finally:
            for w in group[1:]:
                w.event.set()

    @staticmethod
    def _outcome(w: _Waiter[P, R]) -> R:
        if w.error is not None:
            raise w.error
        return w.result  # type: ignore[return-value]  # set whenever error is None
