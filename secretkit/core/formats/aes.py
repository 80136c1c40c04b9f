"""The ``aescbc`` and ``aesgcm`` local-key providers (data after the full prefix).

aescbc:  IV(16) ‖ AES-CBC(key, IV, PKCS#7(plaintext)); no MAC, no AAD.
aesgcm:  nonce(12) ‖ AES-GCM(key, nonce, plaintext, AAD = etcd key) ‖ tag(16).
Keys are 16, 24 or 32 bytes for both.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from secretkit.errors import ConfigError, DecryptError, FormatError

BLOCK_SIZE = 16
GCM_NONCE_SIZE = 12
GCM_TAG_SIZE = 16
AES_KEY_SIZES = (16, 24, 32)


def _check_key_for_encrypt(key: bytes, provider: str) -> None:
    if len(key) not in AES_KEY_SIZES:
        raise ConfigError(
            f"{provider} key is {len(key)} bytes; it must be 16, 24 or 32",
            hint="generate one with: head -c 32 /dev/urandom | base64",
        )


def _check_key_for_decrypt(key: bytes, provider: str) -> None:
    if len(key) not in AES_KEY_SIZES:
        raise DecryptError(f"{provider} key is {len(key)} bytes; it must be 16, 24 or 32")


def aescbc_encrypt(key: bytes, plaintext: bytes, *, iv: bytes | None = None) -> bytes:
    """Return ``IV ‖ AES-CBC(PKCS#7(plaintext))``; a full pad block when len % 16 == 0."""
    _check_key_for_encrypt(key, "aescbc")
    if iv is None:
        iv = os.urandom(BLOCK_SIZE)
    elif len(iv) != BLOCK_SIZE:
        raise ValueError("aescbc IV must be 16 bytes")
    pad = BLOCK_SIZE - len(plaintext) % BLOCK_SIZE
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    body = encryptor.update(plaintext) + encryptor.update(bytes((pad,)) * pad)
    return iv + body + encryptor.finalize()


def aescbc_decrypt(key: bytes, data: bytes) -> bytes:
    """Decrypt ``IV ‖ ciphertext`` and strip PKCS#7 padding exactly as upstream does.

    Upstream's check is loose: it rejects only a pad byte of 0 or larger than the
    decrypted length, and pad bytes that differ from the last byte. A pad value above
    16 is accepted when it fits, so this function does the same.
    """
    _check_key_for_decrypt(key, "aescbc")
    if len(data) < 2 * BLOCK_SIZE:
        raise FormatError(
            f"aescbc data is {len(data)} bytes; at least an IV and one block (32) are needed"
        )
    if len(data) % BLOCK_SIZE:
        raise FormatError("aescbc ciphertext is not a multiple of the block size")
    view = memoryview(data)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(view[:BLOCK_SIZE])).decryptor()
    result = decryptor.update(view[BLOCK_SIZE:]) + decryptor.finalize()
    pad = result[-1]
    if pad == 0 or pad > len(result):
        raise DecryptError("invalid PKCS#7 data (wrong key or tampered value)")
    size = len(result) - pad
    if result.count(pad, size) != pad:
        raise DecryptError("invalid PKCS#7 padding (wrong key or tampered value)")
    return result[:size]


def aesgcm_encrypt(
    key: bytes, plaintext: bytes, aad: bytes, *, nonce: bytes | None = None
) -> bytes:
    """Return ``nonce(12) ‖ AES-GCM(key, nonce, plaintext, aad) ‖ tag(16)``."""
    _check_key_for_encrypt(key, "aesgcm")
    if nonce is None:
        nonce = os.urandom(GCM_NONCE_SIZE)
    elif len(nonce) != GCM_NONCE_SIZE:
        raise ValueError("aesgcm nonce must be 12 bytes")
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def gcm_open(key: bytes, data: bytes | memoryview, aad: bytes, what: str) -> bytes:
    """Open ``nonce(12) ‖ ciphertext ‖ tag(16)`` with an AES key of any valid size.

    Shared by aesgcm, kms v1 and kms v2; ``what`` names the layer in error messages.
    """
    if len(key) not in AES_KEY_SIZES:
        raise DecryptError(f"{what} key is {len(key)} bytes; it must be 16, 24 or 32")
    if len(data) < GCM_NONCE_SIZE + GCM_TAG_SIZE:
        raise FormatError(
            f"{what} data is {len(data)} bytes; nonce and tag alone take "
            f"{GCM_NONCE_SIZE + GCM_TAG_SIZE}"
        )
    view = memoryview(data)
    try:
        return AESGCM(key).decrypt(view[:GCM_NONCE_SIZE], view[GCM_NONCE_SIZE:], aad)
    except InvalidTag:
        raise DecryptError(
            f"{what}: message authentication failed",
            hint="wrong key, tampered value, or the value was copied from another etcd key",
        ) from None


def aesgcm_decrypt(key: bytes, data: bytes, aad: bytes) -> bytes:
    """Decrypt ``nonce ‖ ciphertext ‖ tag``; ``aad`` is the full etcd key."""
    return gcm_open(key, data, aad, "aesgcm")
