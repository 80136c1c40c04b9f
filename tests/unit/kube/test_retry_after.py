"""``Retry-After`` as the API server sends it: seconds; anything else is ignored."""

from __future__ import annotations

import pytest

from secretkit.kube.client import _retry_after


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("3", 3.0), ("0.5", 0.5), ("0", 0.0), ("-4", 0.0), (None, None), ("", None),
     ("Wed, 21 Oct 2026 07:28:00 GMT", None), ("nan", None), ("inf", None),
     ("-inf", None), ("1e400", None)],
)
def test_retry_after(header: str | None, seconds: float | None) -> None:
    assert _retry_after(header) == seconds
