"""The KMS v2 ``EncryptedObject`` (data after ``k8s:enc:kms:v2:<name>:``) and its payload.

``EncryptedObject`` (proto3): encryptedData=1 bytes, keyID=2 string,
encryptedDEKSource=3 bytes, annotations=4 map<string, bytes>,
encryptedDEKSourceType=5 enum. Validation mirrors upstream ``ValidateEncryptedObject``.

Payload (``encryptedData``):
- type 1 ``HKDF_SHA256_XNONCE_AES_GCM_SEED``: info(32) ‖ nonce(12) ‖
  AES-256-GCM(DK, nonce, plaintext, AAD = etcd key) ‖ tag, with
  DK = HKDF-Expand(SHA-256, PRK = seed, info, 32) (expand only, no extract).
- type 0 ``AES_GCM_KEY``: nonce(12) ‖ AES-GCM(DEK, nonce, plaintext, AAD) ‖ tag.
"""

from __future__ import annotations

import functools
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from secretkit.core.formats.aes import GCM_NONCE_SIZE, aesgcm_encrypt, gcm_open
from secretkit.core.formats.header import encrypted_data_span
from secretkit.core.formats.model import DEKSourceType, EncryptedObject
from secretkit.core.formats.protowire import (
    WIRE_LEN,
    WIRE_VARINT,
    encode_len_field,
    encode_varint_field,
    iter_fields,
)
from secretkit.errors import DecryptError, FormatError

KEY_ID_MAX_SIZE = 1024
ENCRYPTED_DEK_SOURCE_MAX_SIZE = 1024
ANNOTATIONS_MAX_SIZE = 32 * 1024
INFO_SIZE = 32
SEED_MIN_SIZE = 32
DERIVED_KEY_SIZE = 32

_WHERE = "EncryptedObject"
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _shown(text: str) -> str:
    # Annotation keys are public metadata, but garbage input may be huge or unprintable.
    return repr(text[:64] + ("…" if len(text) > 64 else ""))


@functools.lru_cache(maxsize=1024)
def is_fully_qualified_domain_name(name: str) -> bool:
    """Upstream ``IsFullyQualifiedDomainName``: RFC 1123 subdomain with ≥ 2 labels.

    One trailing dot is allowed, as upstream strips it before checking. Cached: every
    value an apiserver writes carries the same few annotation keys (public metadata).
    """
    if name.endswith("."):
        name = name[:-1]
    if not name or len(name) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(name):
        return False
    labels = name.split(".")
    return len(labels) >= 2 and all(
        len(label) <= 63 and _DNS1123_LABEL.fullmatch(label) for label in labels
    )


def validate_encrypted_object(obj: EncryptedObject) -> None:
    """Raise :class:`FormatError` where upstream's ``ValidateEncryptedObject`` fails."""
    if obj.encrypted_dek_source_type not in (0, 1):
        raise FormatError(
            f"unknown encryptedDEKSourceType {int(obj.encrypted_dek_source_type)}", where=_WHERE
        )
    if not obj.encrypted_data:
        raise FormatError("encryptedData is empty", where=_WHERE)
    if not obj.encrypted_dek_source:
        raise FormatError("encryptedDEKSource is empty", where=_WHERE)
    if len(obj.encrypted_dek_source) > ENCRYPTED_DEK_SOURCE_MAX_SIZE:
        raise FormatError(
            f"encryptedDEKSource is {len(obj.encrypted_dek_source)} bytes, "
            f"more than {ENCRYPTED_DEK_SOURCE_MAX_SIZE}",
            where=_WHERE,
        )
    key_id_size = len(obj.key_id.encode("utf-8", "surrogatepass"))
    if key_id_size == 0:
        raise FormatError("keyID is empty", where=_WHERE)
    if key_id_size > KEY_ID_MAX_SIZE:
        raise FormatError(
            f"keyID is {key_id_size} bytes, more than {KEY_ID_MAX_SIZE}", where=_WHERE
        )
    total = 0
    for key, value in obj.annotations.items():
        if not is_fully_qualified_domain_name(key):
            raise FormatError(
                f"annotation key {_shown(key)} is not a fully qualified domain name",
                where=_WHERE,
                hint="annotation keys need at least two RFC 1123 labels, e.g. version.example.com",
            )
        total += len(key.encode("utf-8", "surrogatepass")) + len(value)
    if total > ANNOTATIONS_MAX_SIZE:
        raise FormatError(
            f"annotations take {total} bytes, more than {ANNOTATIONS_MAX_SIZE}", where=_WHERE
        )


def _text(value: memoryview, field_name: str) -> str:
    try:
        return str(value, "utf-8")
    except UnicodeDecodeError:
        raise FormatError(f"{field_name} is not valid UTF-8", where=_WHERE) from None


def _decode_annotation(entry: memoryview) -> tuple[str, bytes]:
    key = ""
    value = b""
    for number, wire_type, item in iter_fields(entry, where=_WHERE + ".annotations"):
        if number == 1:
            if wire_type != WIRE_LEN or not isinstance(item, memoryview):
                raise FormatError("annotation key has the wrong wire type", where=_WHERE)
            key = _text(item, "annotation key")
        elif number == 2:
            if wire_type != WIRE_LEN or not isinstance(item, memoryview):
                raise FormatError("annotation value has the wrong wire type", where=_WHERE)
            value = bytes(item)
    return key, value


@dataclass(frozen=True)
class _Fields:
    """The raw fields of one EncryptedObject message, before validation."""

    encrypted_data: bytes | None = field(repr=False)  # None: field 1 absent
    key_id: str
    dek_source: bytes = field(repr=False)
    annotations: Mapping[str, bytes]
    source_type: int


def _parse_fields(data: bytes) -> _Fields:
    encrypted_data: bytes | None = None
    key_id = ""
    dek_source = b""
    annotations: dict[str, bytes] = {}
    source_type = 0
    for number, wire_type, value in iter_fields(data, where=_WHERE):
        if number == 5:
            if wire_type != WIRE_VARINT or not isinstance(value, int):
                raise FormatError("encryptedDEKSourceType has the wrong wire type", where=_WHERE)
            # Go stores the enum in an int32: keep the low 32 bits, signed.
            source_type = value & 0xFFFFFFFF
            if source_type >= 1 << 31:
                source_type -= 1 << 32
            continue
        if number > 5:
            continue  # unknown fields are skipped, like every protobuf reader
        if wire_type != WIRE_LEN or not isinstance(value, memoryview):
            raise FormatError(f"field {number} has the wrong wire type {wire_type}", where=_WHERE)
        if number == 1:
            encrypted_data = bytes(value)
        elif number == 2:
            key_id = _text(value, "keyID")
        elif number == 3:
            dek_source = bytes(value)
        else:
            key, item = _decode_annotation(value)
            annotations[key] = item
    return _Fields(encrypted_data, key_id, dek_source, MappingProxyType(annotations), source_type)


def _build(fields: _Fields, encrypted_data: bytes) -> EncryptedObject:
    if fields.source_type not in (0, 1):
        raise FormatError(f"unknown encryptedDEKSourceType {fields.source_type}", where=_WHERE)
    obj = EncryptedObject(
        encrypted_data=encrypted_data,
        key_id=fields.key_id,
        encrypted_dek_source=fields.dek_source,
        annotations=fields.annotations,
        encrypted_dek_source_type=DEKSourceType(fields.source_type),
    )
    validate_encrypted_object(obj)
    return obj


@functools.lru_cache(maxsize=256)
def _validated_tail(tail: bytes) -> _Fields | None:
    """Parse and validate fields 2-5, given non-empty encryptedData; None if field 1 recurs.

    Cached because every value one apiserver writes between two KMS key changes carries
    the same keyID, encryptedDEKSource and annotations (all public metadata); only the
    leading encryptedData differs. The result is immutable.
    """
    fields = _parse_fields(tail)
    if fields.encrypted_data is not None:
        return None
    _build(fields, b"\x00")  # validation only; non-empty data keeps upstream's error order
    return fields


def decode_encrypted_object(data: bytes) -> EncryptedObject:
    """Decode and validate an ``EncryptedObject``; :class:`FormatError` on any problem.

    ``annotations`` of the result is a read-only mapping.
    """
    if not isinstance(data, bytes):
        data = bytes(data)  # bytearray/memoryview callers: the cache needs hashable bytes
    # Fast path for the apiserver's field order: non-empty field 1 first, metadata after.
    span = encrypted_data_span(data)
    if span is not None:
        start, end = span
        fields = _validated_tail(data[end:])
        if fields is not None:
            return _with_data(fields, data[start:end])
    fields = _parse_fields(data)
    return _build(fields, fields.encrypted_data or b"")


def _with_data(fields: _Fields, encrypted_data: bytes) -> EncryptedObject:
    """Build an already validated object around new encryptedData."""
    return EncryptedObject(
        encrypted_data=encrypted_data,
        key_id=fields.key_id,
        encrypted_dek_source=fields.dek_source,
        annotations=fields.annotations,
        encrypted_dek_source_type=DEKSourceType(fields.source_type),
    )


def encode_encrypted_object(obj: EncryptedObject) -> bytes:
    """Validate and encode an ``EncryptedObject`` (proto3: zero values omitted).

    Annotations are written in sorted key order so the output is deterministic;
    upstream's order varies, so compare decoded objects, never encodings.
    """
    validate_encrypted_object(obj)
    parts = [
        encode_len_field(1, obj.encrypted_data),
        encode_len_field(2, obj.key_id.encode()),
        encode_len_field(3, obj.encrypted_dek_source),
    ]
    for key in sorted(obj.annotations):
        entry = encode_len_field(1, key.encode()) + encode_len_field(2, obj.annotations[key])
        parts.append(encode_len_field(4, entry))
    if obj.encrypted_dek_source_type != DEKSourceType.AES_GCM_KEY:
        parts.append(encode_varint_field(5, int(obj.encrypted_dek_source_type)))
    return b"".join(parts)


def _derive_key(seed: bytes, info: bytes) -> bytes:
    # Upstream's sha256KDFExpandOnly: HKDF-Expand(SHA-256, PRK = seed, info, L = 32).
    # For L <= HashLen, RFC 5869 makes that the first block alone, T(1) =
    # HMAC(PRK, info || 0x01): one C call instead of building a KDF object per value
    # (tests compare it with cryptography's HKDFExpand).
    return hmac.digest(seed, info + b"\x01", "sha256")[:DERIVED_KEY_SIZE]


def kmsv2_encrypt_data(
    seed: bytes,
    plaintext: bytes,
    aad: bytes,
    *,
    info: bytes | None = None,
    nonce: bytes | None = None,
) -> bytes:
    """Return type-1 ``encryptedData``: ``info(32) ‖ nonce(12) ‖ AES-256-GCM(DK, ...)``.

    Raises ``ValueError`` for a seed under 32 bytes or a wrongly sized info/nonce
    (programming errors: the caller draws them).
    """
    if len(seed) < SEED_MIN_SIZE:
        raise ValueError(f"kms v2 seed must be at least {SEED_MIN_SIZE} bytes")
    if info is None:
        info = os.urandom(INFO_SIZE)
    elif len(info) != INFO_SIZE:
        raise ValueError(f"kms v2 info must be {INFO_SIZE} bytes")
    if nonce is not None and len(nonce) != GCM_NONCE_SIZE:
        raise ValueError(f"kms v2 nonce must be {GCM_NONCE_SIZE} bytes")
    return info + aesgcm_encrypt(_derive_key(seed, info), plaintext, aad, nonce=nonce)


def kmsv2_decrypt_data(obj: EncryptedObject, dek_source: bytes, aad: bytes) -> bytes:
    """Decrypt ``obj.encrypted_data`` with the plaintext DEK source (seed or DEK).

    ``dek_source`` is what the KMS plugin's Decrypt returned for
    ``obj.encrypted_dek_source``; ``aad`` is the full etcd key.
    """
    return kmsv2_open(obj.encrypted_dek_source_type, dek_source, obj.encrypted_data, aad)


def kmsv2_open(
    source_type: DEKSourceType | int, dek_source: bytes, data: bytes | memoryview, aad: bytes
) -> bytes:
    """Decrypt one ``encryptedData`` of DEK source type ``source_type`` with ``dek_source``.

    The core of :func:`kmsv2_decrypt_data`, for callers that already hold the DEK
    source of a header (see :mod:`secretkit.core.formats.header`) and only slice out the data.
    """
    if source_type == DEKSourceType.HKDF_SHA256_XNONCE_AES_GCM_SEED:
        if len(dek_source) < SEED_MIN_SIZE:
            raise DecryptError(
                f"kms v2 seed is {len(dek_source)} bytes; at least {SEED_MIN_SIZE} are needed"
            )
        if len(data) < INFO_SIZE:
            raise FormatError("kms v2 encryptedData is shorter than the 32-byte HKDF info")
        view = memoryview(data)
        key = _derive_key(dek_source, bytes(view[:INFO_SIZE]))
        return gcm_open(key, view[INFO_SIZE:], aad, "kms v2")
    if source_type == DEKSourceType.AES_GCM_KEY:
        return gcm_open(dek_source, data, aad, "kms v2")
    raise FormatError(f"unknown encryptedDEKSourceType {int(source_type)}", where=_WHERE)
