"""Property: any decoded document yields problems, never an unexpected exception."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from secretkit.core.encryption_config import ConfigProblem, check_encryption_config

_FIELDS = st.sampled_from(
    [
        "kind", "apiVersion", "resources", "providers", "aesgcm", "aescbc", "secretbox",
        "identity", "kms", "keys", "name", "secret", "endpoint", "timeout", "cachesize", "x",
    ]
)  # fmt: skip
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.sampled_from(["EncryptionConfiguration", "apiserver.config.k8s.io/v1", "v2", "3s", "*."]),
    st.text(max_size=12),
)
_DOCS: st.SearchStrategy[Any] = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(_FIELDS, inner, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None)
@given(doc=_DOCS)
def test_any_document_gives_problems_not_crashes(doc: Any) -> None:
    cfg, problems = check_encryption_config(json.dumps(doc).encode())
    assert all(isinstance(p, ConfigProblem) and p.path and p.message for p in problems)
    if not problems:
        assert cfg is not None and cfg.rules
