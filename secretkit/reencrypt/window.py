"""How many requests may be in flight, adapted to what the server answers.

Additive increase, multiplicative decrease (as TCP does): every ``limit`` answers in
a row that were not an overload let one more request in, up to the configured
concurrency; an overload (429 Too Many Requests, 503, or any answer carrying
``Retry-After``) halves the window and holds new requests back until the time the
server asked for. kube-apiserver's API Priority and Fairness answers 429 with
``Retry-After`` when a client's flow is over its share: this is the polite reaction.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: statuses that mean "slow down" (with or without Retry-After)
OVERLOAD = frozenset({429, 503})
#: how long to hold back after an overload that did not say (seconds)
DEFAULT_PAUSE = 1.0


class AdaptiveWindow:
    """A concurrency limit between 1 and ``maximum`` that follows the server's answers."""

    def __init__(self, maximum: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.maximum = max(int(maximum), 1)
        self.limit = self.maximum
        self.shrinks = 0
        self._clock = clock
        self._inflight = 0
        self._not_before = 0.0
        self._successes = 0
        self._cond = threading.Condition()

    def acquire(self) -> None:
        """Wait for a free slot (and for any pause the server asked for)."""
        with self._cond:
            while True:
                wait = self._not_before - self._clock()
                if self._inflight < self.limit and wait <= 0:
                    self._inflight += 1
                    return
                self._cond.wait(timeout=wait if wait > 0 else None)

    def release(self, status: int | None, retry_after: float | None = None) -> None:
        """Free a slot and learn from the answer (``None``: no answer at all)."""
        with self._cond:
            self._inflight -= 1
            if status in OVERLOAD or retry_after is not None:
                self.limit = max(1, self.limit // 2)
                self.shrinks += 1
                self._successes = 0
                pause = retry_after if retry_after is not None else DEFAULT_PAUSE
                self._not_before = max(self._not_before, self._clock() + pause)
            elif status is not None and status < 500:
                self._successes += 1
                if self._successes >= self.limit and self.limit < self.maximum:
                    self.limit += 1
                    self._successes = 0
            self._cond.notify_all()

    @contextmanager
    def slot(self) -> Iterator[list[int | float | None]]:
        """``with window.slot() as answer: ...; answer[:] = [status, retry_after]``."""
        self.acquire()
        answer: list[int | float | None] = [None, None]
        try:
            yield answer
        finally:
            status, retry = answer
            self.release(int(status) if status is not None else None,
                         float(retry) if retry is not None else None)
