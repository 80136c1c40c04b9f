"""The *header* of a stored value: the bytes that decide how it is read.

An audit of a cluster judges hundreds of thousands of values, but only a handful of
distinct headers: one per plaintext encoding, one per local key name, one per kms v2
seed (keyID, wrapped DEK source, annotations and DEK type are repeated on every value
an apiserver writes until the key changes). Everything a verdict depends on apart
from the ciphertext itself is in the header, so a verdict can be worked out once per
header and reused; only the decryption has to run per value.

- plaintext: ``b"k8s\\x00"`` (protobuf envelope) or ``b"{"`` (JSON);
- aescbc / aesgcm / secretbox: the prefix through the first ``:`` after the key
  name, e.g. ``b"k8s:enc:aesgcm:v1:key1:"``. Key names may contain ``:``, so this
  header decides the key only when no configured name starts with ``name + ":"``;
  see :func:`header_decides_key`;
- kms v2: ``b"k8s:enc:kms:v2:<name>:"`` followed by the ``EncryptedObject`` bytes
  *after* its ``encryptedData`` field, when that field comes first and is not empty
  (the order every apiserver writes); the rest of the message is then the same for
  two values exactly when their keyID, DEK source, annotations and DEK type are.
  A rest that repeats ``encryptedData`` (readers keep the last one) is still a
  header, but readers must not decrypt the first field: see
  :func:`repeats_encrypted_data`.

Anything else (kms v1, unknown prefixes, other field orders, garbage) has no header:
callers take their full, per-value path for it.
"""

from __future__ import annotations

from collections.abc import Iterable

from secretkit.core.formats.envelope import PROTOBUF_MAGIC
from secretkit.core.formats.prefixes import (
    AESCBC_PREFIX,
    AESGCM_PREFIX,
    KMS_V2_PREFIX,
    SECRETBOX_PREFIX,
)
from secretkit.core.formats.protowire import iter_fields, read_varint
from secretkit.errors import FormatError

#: key and provider names are looked for within this many bytes after the prefix
NAME_SCAN_LIMIT = 512
_LOCAL_PREFIXES = (AESGCM_PREFIX, AESCBC_PREFIX, SECRETBOX_PREFIX)
_JSON = b"{"


def encrypted_data_span(data: bytes, offset: int = 0) -> tuple[int, int] | None:
    """``(start, end)`` of a leading, non-empty ``encryptedData`` field at ``offset``.

    ``data[offset:]`` is an ``EncryptedObject`` message. None when field 1 is not
    first, is empty, or runs past the end (the caller then parses the whole message).
    """
    if data[offset : offset + 1] != b"\x0a":
        return None
    try:
        length, start = read_varint(data, offset + 1)
    except Exception:  # a malformed varint: the full parser reports it properly
        return None
    end = start + length
    if length == 0 or end > len(data):
        return None
    return start, end


def value_header(value: bytes) -> bytes | None:
    """The header of ``value`` (see the module docstring), or None when it has none."""
    if value.startswith(PROTOBUF_MAGIC):
        return PROTOBUF_MAGIC
    if value.startswith(_JSON):
        return _JSON
    for base in _LOCAL_PREFIXES:
        if value.startswith(base):
            start = len(base)
            end = value.find(b":", start, start + NAME_SCAN_LIMIT)
            return value[: end + 1] if end > start else None
    if value.startswith(KMS_V2_PREFIX):
        start = len(KMS_V2_PREFIX)
        # kms v2 provider names cannot contain ':', so the first one ends the name
        end = value.find(b":", start, start + NAME_SCAN_LIMIT)
        if end <= start:
            return None
        span = encrypted_data_span(value, end + 1)
        if span is None:
            return None
        return value[: end + 1] + value[span[1] :]
    return None


def header_decides_key(name: bytes, configured: Iterable[bytes]) -> bool:
    """True when a local-key header naming ``name`` picks the same key for every value.

    ``configured`` are the configured key names (UTF-8). A configured name
    ``name:x`` would match only some of the values whose header is ``...:name:``
    (those whose ciphertext happens to start with ``x:``), so such a header must be
    judged value by value.
    """
    longer = name + b":"
    return not any(other.startswith(longer) for other in configured)


def repeats_encrypted_data(tail: bytes) -> bool:
    """True when ``tail`` (an ``EncryptedObject`` after its first ``encryptedData``)
    holds another ``encryptedData`` field.

    Protobuf readers, kube-apiserver's included, keep the *last* occurrence of a
    field, so for such values the header does not tell which bytes are decrypted.
    """
    try:
        return any(number == 1 for number, _, _ in iter_fields(tail))
    except FormatError:
        return True
