"""Backoff: exponential ceiling, full jitter, cap, Retry-After and the attempt budget."""

from __future__ import annotations

from secretkit.reencrypt.retry import RetryPolicy


def test_delay_ceiling_doubles_until_the_cap() -> None:
    policy = RetryPolicy(attempts=10, base=0.1, cap=1.0, rng=lambda: 1.0)
    assert [policy.delay(n) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_full_jitter_scales_the_ceiling() -> None:
    policy = RetryPolicy(base=0.1, cap=1.0, rng=lambda: 0.25)
    assert policy.delay(3) == 0.1


def test_retry_after_is_honoured_but_bounded() -> None:
    policy = RetryPolicy(base=0.1, cap=1.0, rng=lambda: 0.0)
    assert policy.delay(1, retry_after=3.0) == 3.0
    assert policy.delay(1, retry_after=3600.0) == 5.0


def test_attempt_budget_counts_the_first_try() -> None:
    policy = RetryPolicy(attempts=3)
    assert [policy.should_retry(n) for n in range(1, 5)] == [True, True, False, False]
