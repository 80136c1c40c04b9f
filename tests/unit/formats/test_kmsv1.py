"""KMS v1 layout: uint16 length ‖ encrypted DEK ‖ payload (AES-GCM, or legacy AES-CBC)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from secretkit.core.formats import decode_kmsv1, encode_kmsv1, kmsv1_decrypt_payload
from secretkit.errors import DecryptError, FormatError

DEK = bytes(range(32))
AAD = b"/registry/secrets/default/v1"
NONCE = bytes(12)


def test_layout_known_answer() -> None:
    payload = NONCE + AESGCM(DEK).encrypt(NONCE, b"secret", AAD)
    value = b"\x00\x03abc" + payload
    assert decode_kmsv1(value) == (b"abc", payload)
    assert encode_kmsv1(b"abc", payload) == value
    assert kmsv1_decrypt_payload(DEK, payload, AAD) == b"secret"


def test_long_dek_length_is_big_endian() -> None:
    dek = b"d" * 258
    assert decode_kmsv1(b"\x01\x02" + dek + b"rest") == (dek, b"rest")


def test_legacy_cbc_payload_still_reads() -> None:
    iv = bytes(range(16))
    encryptor = Cipher(algorithms.AES(DEK), modes.CBC(iv)).encryptor()
    padded = b"old cbc value" + b"\x03" * 3
    payload = iv + encryptor.update(padded) + encryptor.finalize()
    assert kmsv1_decrypt_payload(DEK, payload, AAD) == b"old cbc value"


def test_wrong_dek_or_aad_is_decrypt_error() -> None:
    payload = NONCE + AESGCM(DEK).encrypt(NONCE, b"secret", AAD)
    with pytest.raises(DecryptError):
        kmsv1_decrypt_payload(bytes(32), payload, AAD)
    with pytest.raises(DecryptError):
        kmsv1_decrypt_payload(DEK, payload, AAD + b"x")
    with pytest.raises(DecryptError):
        kmsv1_decrypt_payload(b"short", payload, AAD)


@pytest.mark.parametrize("value", [b"", b"\x00", b"\x00\x05abcd", b"\xff\xff" + b"x" * 100])
def test_truncated_layout_is_format_error(value: bytes) -> None:
    with pytest.raises(FormatError):
        decode_kmsv1(value)


def test_encode_rejects_empty_or_huge_dek() -> None:
    with pytest.raises(FormatError):
        encode_kmsv1(b"", b"payload")
    with pytest.raises(FormatError):
        encode_kmsv1(b"x" * 65536, b"payload")
