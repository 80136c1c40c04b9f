"""The property test can fail: with the old code's blind spots put back, it finds the loss.

A property test that passes proves something only if it would fail on the bug it was
written for. ``old_gate_blind_spots.patch`` puts back what lost data before issue 11 (a
partial selection of a shared rule accepted, re-encryption and the prune gate limited to
the resources typed, no proof after re-encrypting). This test applies it to a copy of
the tree (never to the checkout other tests import) and runs the property test there
with the CI's settings and fixed seed, shrinking off: it must fail with a value that a
running config cannot read. If a change to the strategies ever makes the search blind
to this bug, this test says so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PATCH = Path(__file__).with_name("old_gate_blind_spots.patch")
PROPERTY_TEST = "tests/integration/rotation/test_lifecycle_property.py"


def _copy_tree(target: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    for name in ("secretkit", "kms_plugin", "tests"):
        shutil.copytree(ROOT / name, target / name, ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", target / "pyproject.toml")


@pytest.mark.etcd
@pytest.mark.timeout(900)
def test_property_test_finds_the_shared_rule_loss_on_the_old_code(tmp_path: Path) -> None:
    tree = tmp_path / "old"
    tree.mkdir()
    _copy_tree(tree)
    applied = subprocess.run(["git", "apply", str(PATCH)], cwd=tree, capture_output=True,
                             text=True, check=False)
    assert applied.returncode == 0, f"the patch no longer applies: {applied.stderr}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(PYTHONPATH=str(tree), SECRETKIT_PROPERTY_NO_SHRINK="1",
               SECRETKIT_PROPERTY_RANDOM="0")
    # the copy, not the checkout, is what that interpreter imports: the patched gate runs
    where = subprocess.run(
        [sys.executable, "-c", "import secretkit.rotation.gates as g; print(g.__file__)"],
        cwd=tree, env=env, capture_output=True, text=True, check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(tree), where.stdout
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
         "-p", "no:xdist", PROPERTY_TEST],
        cwd=tree, env=env, capture_output=True, text=True, check=False, timeout=850,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 1, output[-3000:]
    assert "unreadable by a running config" in output, output[-3000:]
    # a resource of the shared rule the typed selection left out (either of the two)
    assert "unreadable by a running config [(['secrets', 'configmaps']" in output, output[-3000:]
