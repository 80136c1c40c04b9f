"""The stand-in's update property test can fail: each way of trusting the cached state
too far, put into a copy of the store, makes it fail (shrinking off, CI's seed).

The ways are the places where upstream's ``GuaranteedUpdate`` leaves its
``cachedExistingObject`` for a fresh read: a no-op, a refusal by the update function,
a ``resourceVersion`` precondition that does not match, and a lost compare-and-swap;
plus one of the stand-in's own (it keeps values encrypted): a guess that no longer
decrypts because its key was removed since.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mutation import copy_tree, run_in_copy

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
    ("a guess that no longer decrypts taken as final",
     "            except ApiError:\n                if verified:\n                    raise\n"
     "                # the value last seen",
     "            except ApiError:\n                if True:\n                    raise\n"
     "                # the value last seen"),
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
    copy_tree(tree)
    store = tree / STORE
    text = store.read_text()
    assert text.count(code) == 1, f"the store changed: update this test ({what})"
    store.write_text(text.replace(code, broken))
    code, output = run_in_copy(tree, PROPERTY_TEST, timeout=550)
    assert code == 1, output[-3000:]
    assert "AssertionError" in output, output[-3000:]
