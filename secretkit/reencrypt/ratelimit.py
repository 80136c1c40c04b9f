"""A thread-safe token bucket (client-side ``--qps``/``--burst``), like client-go's."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Allow ``qps`` requests per second on average with bursts of up to ``burst``.

    ``qps <= 0`` disables limiting. The clock and sleep are injectable so the logic
    can be tested without waiting.
    """

    def __init__(
        self,
        qps: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.qps = qps
        self.burst = max(int(burst), 1)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(self.burst)
        self._last = clock()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take one token; return how long the caller must wait before using it."""
        if self.qps <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.qps)
            self._last = now
            self._tokens -= 1.0
            if self._tokens >= 0:
                return 0.0
            # the debt is paid back at qps tokens per second
            return -self._tokens / self.qps

    def acquire(self) -> None:
        """Block until one request may be sent."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
