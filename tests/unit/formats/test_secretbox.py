"""secretbox codec: layout (nonce ‖ tag ‖ ciphertext), errors, known answers."""

from __future__ import annotations

import nacl.bindings
import pytest

from secretkit.core.formats import secretbox_decrypt, secretbox_encrypt
from secretkit.errors import ConfigError, DecryptError, FormatError

KEY = bytes(range(32))
NONCE = bytes(range(24))


def test_layout_is_nonce_tag_ciphertext() -> None:
    out = secretbox_encrypt(KEY, b"hello", nonce=NONCE)
    # libsodium's "easy" API writes MAC ‖ ciphertext; the nonce goes in front.
    assert out == NONCE + nacl.bindings.crypto_secretbox_easy(b"hello", NONCE, KEY)
    assert len(out) == 24 + 16 + 5
    assert secretbox_decrypt(KEY, out) == b"hello"


@pytest.mark.parametrize("size", [0, 23, 24, 39])
def test_short_data_is_format_error(size: int) -> None:
    with pytest.raises(FormatError):
        secretbox_decrypt(KEY, bytes(size))


def test_empty_plaintext_is_tag_only() -> None:
    out = secretbox_encrypt(KEY, b"", nonce=NONCE)
    assert len(out) == 40
    assert secretbox_decrypt(KEY, out) == b""


@pytest.mark.parametrize("position", [0, 23, 24, 39, 40, -1])
def test_any_flipped_byte_fails(position: int) -> None:
    out = bytearray(secretbox_encrypt(KEY, b"some plaintext", nonce=NONCE))
    out[position] ^= 1
    with pytest.raises(DecryptError):
        secretbox_decrypt(KEY, bytes(out))


@pytest.mark.parametrize("key_size", [0, 16, 24, 31, 33])
def test_key_must_be_32_bytes(key_size: int) -> None:
    with pytest.raises(ConfigError):
        secretbox_encrypt(bytes(key_size), b"x")
    with pytest.raises(DecryptError):
        secretbox_decrypt(bytes(key_size), bytes(64))


def test_nonce_size_checked() -> None:
    with pytest.raises(ValueError):
        secretbox_encrypt(KEY, b"x", nonce=bytes(12))
