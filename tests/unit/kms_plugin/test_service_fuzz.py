"""Property tests: whatever a caller sends, the service answers or refuses cleanly."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from kms_plugin.errors import InvalidRequest
from kms_plugin.service import PluginService
from kms_plugin.v1beta1_envelope import pack_v1beta1, unpack_v1beta1
from secretkit.backends import LocalBackend, LocalKey
from secretkit.errors import BackendInvalidRequest, DecryptError

SERVICE = PluginService(LocalBackend([LocalKey(os.urandom(32))]))
REFUSALS = (InvalidRequest, BackendInvalidRequest, DecryptError)


@settings(max_examples=300, deadline=None)
@given(
    ciphertext=st.binary(max_size=1100),
    key_id=st.text(max_size=1100),
    annotations=st.dictionaries(st.text(max_size=30), st.binary(max_size=40), max_size=4),
)
def test_decrypt_refuses_junk_with_known_errors(
    ciphertext: bytes, key_id: str, annotations: dict[str, bytes]
) -> None:
    try:
        SERVICE.decrypt(ciphertext, key_id, annotations)
    except REFUSALS:
        return
    raise AssertionError("junk decrypted")


@settings(max_examples=300, deadline=None)
@given(cipher=st.one_of(st.binary(max_size=200), st.binary(max_size=120).map(b"skv1".__add__)))
def test_v1beta1_decrypt_refuses_junk(cipher: bytes) -> None:
    try:
        SERVICE.v1beta1_decrypt(cipher)
    except REFUSALS:
        return
    raise AssertionError("junk decrypted")


@settings(max_examples=200, deadline=None)
@given(
    key_id=st.text(min_size=1, max_size=200),
    annotations=st.dictionaries(st.text(max_size=30), st.binary(max_size=60), max_size=4),
    inner=st.binary(min_size=1, max_size=300),
)
def test_v1beta1_envelope_round_trip(key_id: str, annotations: dict[str, bytes],
                                     inner: bytes) -> None:
    packed = pack_v1beta1(key_id, annotations, inner)
    assert unpack_v1beta1(packed, where="t") == (key_id, annotations, inner)


@settings(max_examples=100, deadline=None)
@given(plaintext=st.binary(min_size=1, max_size=512))
def test_encrypt_decrypt_any_valid_plaintext(plaintext: bytes) -> None:
    res = SERVICE.encrypt(plaintext)
    assert SERVICE.decrypt(res.ciphertext, res.key_id, res.annotations) == plaintext
    assert SERVICE.v1beta1_decrypt(SERVICE.v1beta1_encrypt(plaintext)) == plaintext
