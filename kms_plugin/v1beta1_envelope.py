"""The self-describing ciphertext this plugin returns on the v1beta1 API.

v1beta1 ``Decrypt`` carries no key_id, so the ciphertext itself must say which key
wrapped it, or nothing written before a rotation could be read afterwards. Layout
(all lengths big-endian)::

    magic  b"skv1"                      4 bytes
    key_id length (u16) ‖ key_id        UTF-8
    annotation count (u16)
      per annotation: key length (u16) ‖ key ‖ value length (u16) ‖ value
    backend ciphertext                  the rest (non-empty)

Nothing here is secret: key_id and annotations are stored in plaintext by v2 too.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from kms_plugin.errors import InvalidRequest

MAGIC = b"skv1"
_U16 = struct.Struct(">H")


class EnvelopeError(InvalidRequest):
    """A v1beta1 ciphertext does not have this plugin's layout."""


def pack_v1beta1(key_id: str, annotations: Mapping[str, bytes], ciphertext: bytes) -> bytes:
    """Prefix the backend ciphertext with its key_id and annotations."""
    parts = [MAGIC, _field(key_id.encode("utf-8")), _U16.pack(len(annotations))]
    for key in sorted(annotations):
        parts.append(_field(key.encode("utf-8")))
        parts.append(_field(bytes(annotations[key])))
    parts.append(ciphertext)
    return b"".join(parts)


def unpack_v1beta1(data: bytes, *, where: str) -> tuple[str, dict[str, bytes], bytes]:
    """Split a v1beta1 ciphertext into (key_id, annotations, backend ciphertext)."""
    if not data.startswith(MAGIC):
        raise EnvelopeError(
            "ciphertext was not written by secretkit-kms-plugin (bad header)", where=where
        )
    pos = len(MAGIC)
    raw_key_id, pos = _read_field(data, pos, where)
    count, pos = _read_u16(data, pos, where)
    annotations: dict[str, bytes] = {}
    for _ in range(count):
        raw_key, pos = _read_field(data, pos, where)
        value, pos = _read_field(data, pos, where)
        annotations[_utf8(raw_key, where)] = value
    inner = data[pos:]
    if not inner:
        raise EnvelopeError("ciphertext header has no payload", where=where)
    return _utf8(raw_key_id, where), annotations, inner


def _field(value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise EnvelopeError("v1beta1 header field longer than 65535 bytes")
    return _U16.pack(len(value)) + value


def _read_u16(data: bytes, pos: int, where: str) -> tuple[int, int]:
    if pos + 2 > len(data):
        raise EnvelopeError("ciphertext header is truncated", where=where)
    return _U16.unpack_from(data, pos)[0], pos + 2


def _read_field(data: bytes, pos: int, where: str) -> tuple[bytes, int]:
    length, pos = _read_u16(data, pos, where)
    if pos + length > len(data):
        raise EnvelopeError("ciphertext header is truncated", where=where)
    return data[pos : pos + length], pos + length


def _utf8(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise EnvelopeError("ciphertext header holds invalid UTF-8", where=where) from None
