"""RateLimitedLog: a burst per key and period, then a count of what was dropped."""

from __future__ import annotations

import logging

import pytest

from kms_plugin.logs import RateLimitedLog


def test_burst_then_suppressed_count(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    limiter = RateLimitedLog(logging.getLogger("t"), burst=2, period=10.0, clock=lambda: now[0])
    caplog.set_level(logging.INFO, "t")
    written = [limiter.log(logging.INFO, "k", "refused", {"n": i}) for i in range(50)]
    assert written == [True, True] + [False] * 48
    # another key has its own budget
    assert limiter.log(logging.INFO, "other", "refused", {})
    now[0] = 10.0
    assert limiter.log(logging.INFO, "k", "refused", {"n": 50})
    records = [r for r in caplog.records if r.name == "t"]
    assert len(records) == 4
    assert getattr(records[-1], "suppressed") == 48  # noqa: B009
    assert not hasattr(records[0], "suppressed")
