"""Token bucket: burst, steady rate, and disabled limiting (fake clock, no waiting)."""

from __future__ import annotations

import threading

from secretkit.reencrypt.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_burst_is_free_then_requests_are_spaced_at_qps() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, 5, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        limiter.acquire()
    assert clock.slept == []
    limiter.acquire()
    assert clock.slept == [0.1]
    limiter.acquire()
    assert abs(clock.slept[-1] - 0.1) < 1e-9


def test_tokens_refill_over_time_but_never_beyond_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(100, 2, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    limiter.acquire()
    clock.now += 60.0  # a long pause refills only up to the burst
    assert limiter.reserve() == 0.0
    assert limiter.reserve() == 0.0
    assert limiter.reserve() > 0.0


def test_average_rate_over_many_requests_matches_qps() -> None:
    clock = FakeClock()
    limiter = RateLimiter(50, 1, clock=clock, sleep=clock.sleep)
    for _ in range(501):
        limiter.acquire()
    assert abs(clock.now - 10.0) < 1e-6


def test_zero_qps_disables_limiting() -> None:
    clock = FakeClock()
    limiter = RateLimiter(0, 1, clock=clock, sleep=clock.sleep)
    for _ in range(1000):
        limiter.acquire()
    assert clock.slept == []


def test_concurrent_reservations_never_hand_out_more_than_the_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1, 10, clock=clock, sleep=clock.sleep)
    waits: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        w = limiter.reserve()
        with lock:
            waits.append(w)

    threads = [threading.Thread(target=take) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for w in waits if w == 0.0) == 10
    # each further request waits one more second than the previous one
    assert sorted(w for w in waits if w > 0) == [float(i) for i in range(1, 31)]
