"""The README's first command runs the whole runbook, proves each step, and cleans up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_quickstart_runs_the_runbook_and_cleans_up(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    directory = tmp_path / "qs"
    done = subprocess.run(
        [sys.executable, "-m", "secretkit.sandbox.quickstart", "--secrets", "12",
         "--dir", str(directory)],
        capture_output=True, text=True, timeout=600, env=env, check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "13 secrets stored as identity" in out  # 12 seeded + the demo Secret
    assert "demo password visible: False" in out
    summary = out.split("== what this proved", 1)[1]
    for step in ("audit", "enable", "kms rotate", "audit after rotation", "rotate prune gate"):
        assert f"\n {step} " in summary, step
    assert "13 Secrets are plaintext" in summary
    assert "one key: sandbox-kms/vault:" in summary
    assert not directory.exists()  # purged
