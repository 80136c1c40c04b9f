"""The ``secretbox`` local-key provider (data after the full prefix).

Layout: nonce(24) ‖ Poly1305 tag(16) ‖ XSalsa20 ciphertext, i.e. NaCl secretbox with
the tag *before* the data, which is also PyNaCl's ``SecretBox.encrypt`` output. The
key is exactly 32 bytes; no AAD is bound.
"""

from __future__ import annotations

import os

import nacl.exceptions
import nacl.secret

from secretkit.errors import ConfigError, DecryptError, FormatError

KEY_SIZE = nacl.secret.SecretBox.KEY_SIZE  # 32
NONCE_SIZE = nacl.secret.SecretBox.NONCE_SIZE  # 24
TAG_SIZE = nacl.secret.SecretBox.MACBYTES  # 16


def secretbox_encrypt(key: bytes, plaintext: bytes, *, nonce: bytes | None = None) -> bytes:
    """Return ``nonce(24) ‖ tag(16) ‖ ciphertext``."""
    if len(key) != KEY_SIZE:
        raise ConfigError(
            f"secretbox key is {len(key)} bytes; it must be 32",
            hint="generate one with: head -c 32 /dev/urandom | base64",
        )
    if nonce is None:
        nonce = os.urandom(NONCE_SIZE)
    elif len(nonce) != NONCE_SIZE:
        raise ValueError("secretbox nonce must be 24 bytes")
    return bytes(nacl.secret.SecretBox(key).encrypt(plaintext, nonce))


def secretbox_decrypt(key: bytes, data: bytes) -> bytes:
    """Open ``nonce ‖ tag ‖ ciphertext``; :class:`DecryptError` when the tag fails."""
    if len(key) != KEY_SIZE:
        raise DecryptError(f"secretbox key is {len(key)} bytes; it must be 32")
    if len(data) < NONCE_SIZE + TAG_SIZE:
        raise FormatError(
            f"secretbox data is {len(data)} bytes; nonce and tag alone take {NONCE_SIZE + TAG_SIZE}"
        )
    try:
        return bytes(nacl.secret.SecretBox(key).decrypt(data[NONCE_SIZE:], data[:NONCE_SIZE]))
    except nacl.exceptions.CryptoError:
        raise DecryptError(
            "secretbox: message authentication failed",
            hint="wrong key or tampered value",
        ) from None
