"""``secretkit reencrypt`` flag combinations and outcomes, through the real entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.cli.helpers import run_cli
from tests.unit.reencrypt.test_etcd_engine import NEW


def test_dry_run_with_verify_is_a_usage_error_before_anything_is_opened(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "enc.yaml"
    config.write_bytes(NEW)
    # no kubeconfig, no etcd: refused before either is needed
    res = run_cli(capsys, "reencrypt", "--dry-run", "--verify", "--config", str(config),
                  "--endpoints", "http://127.0.0.1:1", "--kubeconfig", str(tmp_path / "none"))
    assert res.code == 2, res.err
    assert "writes nothing" in res.err
