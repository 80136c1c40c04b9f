"""The README's first command runs the whole runbook and proves each step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_quickstart_runs_the_runbook(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "secretkit.sandbox.quickstart",
         "--secrets", "12", "--dir", str(tmp_path / "sb")],
        capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    summary = out.split("== what this proved", 1)[1]
    for step in ("audit", "enable", "kms rotate", "audit after rotation", "rotate prune gate"):
        assert f"\n {step} " in summary, step
    assert "13 Secrets are plaintext" in summary
    assert "demo password visible: False" in out
    # it cleaned up after itself
    assert not (tmp_path / "sb").exists() or not any((tmp_path / "sb").glob("*.pid"))
