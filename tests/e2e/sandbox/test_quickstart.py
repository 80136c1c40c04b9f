"""The quickstart runs end to end and proves what it says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_quickstart_runs_and_cleans_up(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    directory = tmp_path / "qs"
    done = subprocess.run(
        [sys.executable, "-m", "secretkit.sandbox.quickstart", "--secrets", "20",
         "--dir", str(directory)],
        capture_output=True, text=True, timeout=240, env=env, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "21 secrets stored as identity" in out
    assert "1 secrets stored as kms-v2 (key_id vault:" in out
    assert "demo password visible in etcd: False" in out
    assert out.count("\n - ") == 3  # three proven facts
    assert not directory.exists()  # purged
