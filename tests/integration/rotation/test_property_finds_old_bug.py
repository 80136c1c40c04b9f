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

import subprocess
from pathlib import Path

import pytest

from tests.mutation import copy_tree, run_in_copy

PATCH = Path(__file__).with_name("old_gate_blind_spots.patch")
PROPERTY_TEST = "tests/integration/rotation/test_lifecycle_property.py"


@pytest.mark.etcd
@pytest.mark.timeout(900)
def test_property_test_finds_the_shared_rule_loss_on_the_old_code(tmp_path: Path) -> None:
    tree = tmp_path / "old"
    tree.mkdir()
    copy_tree(tree)
    applied = subprocess.run(["git", "apply", str(PATCH)], cwd=tree, capture_output=True,
                             text=True, check=False)
    assert applied.returncode == 0, f"the patch no longer applies: {applied.stderr}"
    code, output = run_in_copy(tree, PROPERTY_TEST, timeout=850)
    assert code == 1, output[-3000:]
    assert "unreadable by a running config" in output, output[-3000:]
    # a resource of the shared rule the typed selection left out (either of the two)
    assert "unreadable by a running config [(['secrets', 'configmaps']" in output, output[-3000:]
