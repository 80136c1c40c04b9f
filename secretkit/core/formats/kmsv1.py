"""The deprecated KMS v1 envelope (data after ``k8s:enc:kms:v1:<name>:``).

Layout: uint16 big-endian length of the encrypted DEK ‖ encrypted DEK ‖ payload.
The payload is AES-GCM with the DEK on write (nonce ‖ ciphertext ‖ tag, AAD = etcd
key); upstream readers also accept AES-CBC (IV ‖ ciphertext, PKCS#7), so we do too.
"""

from __future__ import annotations

from secretkit.core.formats.aes import aescbc_decrypt, gcm_open
from secretkit.errors import DecryptError, FormatError

_LENGTH_SIZE = 2
_MAX_DEK_SIZE = 0xFFFF


def decode_kmsv1(data: bytes) -> tuple[bytes, bytes]:
    """Split a KMS v1 value into ``(encrypted_dek, payload)``."""
    if len(data) < _LENGTH_SIZE:
        raise FormatError("kms v1 data is too short for the 2-byte DEK length")
    dek_length = int.from_bytes(data[:_LENGTH_SIZE], "big")
    end = _LENGTH_SIZE + dek_length
    if end > len(data):
        raise FormatError(
            f"kms v1 encrypted DEK claims {dek_length} bytes, only "
            f"{len(data) - _LENGTH_SIZE} follow"
        )
    return data[_LENGTH_SIZE:end], data[end:]


def encode_kmsv1(encrypted_dek: bytes, payload: bytes) -> bytes:
    """Join an encrypted DEK and a payload into the KMS v1 layout (without prefix)."""
    if not 0 < len(encrypted_dek) <= _MAX_DEK_SIZE:
        raise FormatError(f"kms v1 encrypted DEK must be 1..{_MAX_DEK_SIZE} bytes")
    return len(encrypted_dek).to_bytes(_LENGTH_SIZE, "big") + encrypted_dek + payload


def kmsv1_decrypt_payload(dek: bytes, payload: bytes, aad: bytes) -> bytes:
    """Decrypt a KMS v1 payload with the plaintext DEK: AES-GCM first, then AES-CBC."""
    return kmsv1_open(dek, payload, aad)[0]


def kmsv1_open(dek: bytes, payload: bytes, aad: bytes) -> tuple[bytes, bool]:
    """Like :func:`kmsv1_decrypt_payload`, also saying whether the legacy CBC layout read it.

    Upstream reads with a union of AES-GCM and (pre-1.25) AES-CBC; a value read by the
    second member is stale.
    """
    try:
        return gcm_open(dek, payload, aad, "kms v1"), False
    except (DecryptError, FormatError):
        pass  # upstream's union transformer falls back to the legacy CBC layout
    try:
        return aescbc_decrypt(dek, payload), True
    except (DecryptError, FormatError):
        raise DecryptError(
            "kms v1: payload opens neither as AES-GCM nor as AES-CBC with this DEK",
            hint="wrong DEK, tampered value, or the value was copied from another etcd key",
        ) from None
