"""Retry policy: bounded attempts, exponential backoff with full jitter."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry one object.

    ``attempts`` counts every try including the first. Delay before retry ``n``
    (1-based) is uniform in ``[0, min(cap, base * 2**(n-1))]`` (AWS "full jitter"), so
    workers that conflicted together do not retry together.
    """

    attempts: int = 6
    base: float = 0.05
    cap: float = 2.0
    rng: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def delay(self, retry: int, *, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 = first retry)."""
        ceiling = min(self.cap, self.base * float(2.0 ** max(retry - 1, 0)))
        wait = ceiling * self.rng()
        if retry_after is not None:
            # the server asked for at least this long (429 / 503 with Retry-After)
            wait = max(wait, min(retry_after, self.cap * 5))
        return wait

    def should_retry(self, retry: int) -> bool:
        """True while retry number ``retry`` is still within the budget."""
        return retry < self.attempts
