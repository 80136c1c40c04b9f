"""What a re-encryption request refuses up front, and what a finished run amounts to."""

from __future__ import annotations

import pytest

from secretkit.core.encryption_config import load_encryption_config
from secretkit.errors import UsageError
from secretkit.reencrypt.request import ReencryptRequest, Via
from tests.unit.reencrypt.test_etcd_engine import NEW

CONFIG = load_encryption_config(NEW)


@pytest.mark.parametrize("via", ["api", "etcd"])
def test_verify_after_a_dry_run_is_refused_with_the_reason(via: Via) -> None:
    request = ReencryptRequest(via=via, config=CONFIG, dry_run=True, verify=True)
    with pytest.raises(UsageError) as info:
        request.check()
    error = info.value
    assert "--dry-run" in error.what and "--verify" in error.what
    assert "writes nothing" in error.what
    assert error.hint is not None and "secretkit audit" in error.hint
