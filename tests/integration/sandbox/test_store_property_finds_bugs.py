"""The stand-in's update property test can fail: each way of trusting the cached state
too far, put into a copy of the store, makes it fail (shrinking off, CI's seed).

The four ways are the four places where upstream's ``GuaranteedUpdate`` leaves its
``cachedExistingObject`` for a fresh read: a no-op, a refusal by the update function,
a ``resourceVersion`` precondition that does not match, and a lost compare-and-swap.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.rotation.test_property_finds_old_bug import _copy_tree

STORE = "secretkit/sandbox/apiserver/store.py"
PROPERTY_TEST = "tests/integration/sandbox/test_store_property.py"

#: (name, the code as it is, the code that trusts the guess)
MUTATIONS = [
    ("a no-op answered from the guess",
     "                if not verified:  # a no-op is never answered from a cached state",
     "                if False:"),
    ("a refusal of the guess taken as final",
     "                except ApiError:\n                    if verified:\n",
     "                except ApiError:\n                    if True:\n"),
    ("a precondition checked against the guess",
     "            if precondition and precondition != str(kv.mod_revision):\n"
     "                if not verified:",
     "            if precondition and precondition != str(kv.mod_revision):\n"
     "                if False:"),
    ("a lost compare-and-swap answered as written",
     "            if precondition and verified:\n"
     "                raise conflict(rtype.plural, name, rtype.group)\n",
     "            if precondition and verified:\n"
     "                raise conflict(rtype.plural, name, rtype.group)\n"
     "            return Stored(rtype, plaintext, False, kv.mod_revision)\n"),
]


@pytest.mark.etcd
@pytest.mark.timeout(600)
@pytest.mark.parametrize(("what", "code", "broken"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_the_property_test_catches(tmp_path: Path, what: str, code: str, broken: str) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    _copy_tree(tree)
    store = tree / STORE
    text = store.read_text()
    assert text.count(code) == 1, f"the store changed: update this test ({what})"
    store.write_text(text.replace(code, broken))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(PYTHONPATH=str(tree), SECRETKIT_PROPERTY_NO_SHRINK="1",
               SECRETKIT_PROPERTY_RANDOM="0")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
         "-p", "no:xdist", PROPERTY_TEST],
        cwd=tree, env=env, capture_output=True, text=True, check=False, timeout=550,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 1, output[-3000:]
    assert "AssertionError" in output, output[-3000:]
