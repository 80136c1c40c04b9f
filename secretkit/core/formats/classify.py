"""Classify a stored etcd value by its bytes alone (no keys, no KMS calls).

Used by the audit on every value of a cluster, so it is cheap, copies little, and
never raises: whatever it cannot make sense of becomes ``detail``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from secretkit.core.formats.envelope import PROTOBUF_MAGIC, read_type_meta
from secretkit.core.formats.kmsv2 import decode_encrypted_object
from secretkit.core.formats.model import PlaintextEncoding, StoredValue, ValueProvider
from secretkit.core.formats.prefixes import ENCRYPTED_PREFIX, PROVIDER_PREFIXES
from secretkit.errors import FormatError

# Key and provider names are looked for in the first bytes after the prefix only;
# longer names are not realistic and scanning 10 KB of ciphertext for ':' is waste.
_NAME_SCAN_LIMIT = 512
_PRINTABLE_RUN = re.compile(rb"[\x20-\x7e]*")
_SEGMENT = re.compile(rb"([a-z0-9]{1,32}):([a-z0-9]{1,16}):")

# Smallest data (after "<name>:") each layout can have.
_MIN_AESCBC = 32  # IV + one padded block
_MIN_GCM = 12 + 16  # nonce + tag
_MIN_SECRETBOX = 24 + 16  # nonce + tag


def classify_value(value: bytes) -> StoredValue:
    """Say what wrote ``value``: identity (and its encoding), a local-key provider,
    kms v1, kms v2 (with the decoded ``EncryptedObject``) or unknown. Never raises."""
    try:
        return _classify(value)
    except Exception:  # a classifier bug must not stop an audit of 200k values
        try:
            size = len(value)
        except Exception:
            size = 0
        return StoredValue(
            provider=ValueProvider.UNKNOWN, size=size, detail="value could not be classified"
        )


def _classify(value: bytes) -> StoredValue:
    if not isinstance(value, bytes):
        value = bytes(value)
    size = len(value)
    if not size:
        return StoredValue(ValueProvider.IDENTITY, 0, encoding=PlaintextEncoding.EMPTY)
    if value.startswith(ENCRYPTED_PREFIX):
        return _classify_encrypted(value)
    if value.startswith(PROTOBUF_MAGIC):
        try:
            api_version, kind = read_type_meta(value)
        except FormatError as err:
            return StoredValue(
                ValueProvider.IDENTITY,
                size,
                encoding=PlaintextEncoding.PROTOBUF,
                detail=f"k8s\\x00 envelope does not parse: {err.what}",
            )
        return StoredValue(
            ValueProvider.IDENTITY,
            size,
            encoding=PlaintextEncoding.PROTOBUF,
            api_version=api_version or None,
            kind=kind or None,
        )
    if value.startswith(b"{"):
        return _classify_json(value)
    return StoredValue(
        ValueProvider.IDENTITY,
        size,
        encoding=PlaintextEncoding.OTHER,
        detail="neither a k8s\\x00 protobuf envelope nor JSON",
    )


def _classify_json(value: bytes) -> StoredValue:
    try:
        document: Any = json.loads(value)
    except (ValueError, RecursionError):
        return StoredValue(
            ValueProvider.IDENTITY,
            len(value),
            encoding=PlaintextEncoding.JSON,
            detail="starts with '{' but is not valid JSON",
        )
    api_version = kind = None
    if isinstance(document, dict):
        found_version = document.get("apiVersion")
        found_kind = document.get("kind")
        api_version = found_version if isinstance(found_version, str) else None
        kind = found_kind if isinstance(found_kind, str) else None
    return StoredValue(
        ValueProvider.IDENTITY,
        len(value),
        encoding=PlaintextEncoding.JSON,
        api_version=api_version,
        kind=kind,
    )


def _name_candidates(value: bytes, start: int) -> list[int]:
    """Offsets (relative to ``start``) of every ':' inside the printable run there."""
    run = _PRINTABLE_RUN.match(value, start, start + _NAME_SCAN_LIMIT)
    end = run.end() if run else start
    candidates = []
    pos = value.find(b":", start, end)
    while pos != -1:
        if pos > start:  # an empty name is never valid
            candidates.append(pos - start)
        pos = value.find(b":", pos + 1, end)
    return candidates


def _layout_problem(provider: ValueProvider, value: bytes, data_start: int) -> str | None:
    """Why the data after ``<name>:`` cannot be ``provider``'s layout, or None."""
    length = len(value) - data_start
    if provider == ValueProvider.AESCBC:
        if length < _MIN_AESCBC:
            return f"aescbc data is {length} bytes, shorter than IV + one block"
        if length % 16:
            return "aescbc data is not a multiple of the 16-byte block size"
    elif provider == ValueProvider.AESGCM:
        if length < _MIN_GCM:
            return f"aesgcm data is {length} bytes, shorter than nonce + tag"
    elif provider == ValueProvider.SECRETBOX:
        if length < _MIN_SECRETBOX:
            return f"secretbox data is {length} bytes, shorter than nonce + tag"
    elif provider == ValueProvider.KMS_V1:
        if length < 2:
            return "kms v1 data is too short for the 2-byte DEK length"
        dek_length = int.from_bytes(value[data_start : data_start + 2], "big")
        if dek_length == 0:
            return "kms v1 encrypted DEK length is 0"
        if 2 + dek_length > length:
            return f"kms v1 encrypted DEK claims {dek_length} bytes, only {length - 2} follow"
        if length - 2 - dek_length < _MIN_GCM:
            return "kms v1 payload after the encrypted DEK is too short for AES-GCM"
    return None


def _classify_encrypted(value: bytes) -> StoredValue:
    size = len(value)
    matched = next(
        (
            (provider, base)
            for provider, base in PROVIDER_PREFIXES.items()
            if value.startswith(base)
        ),
        None,
    )
    if matched is None:
        segment = _SEGMENT.match(value, len(ENCRYPTED_PREFIX))
        prefix = value[: segment.end()] if segment else ENCRYPTED_PREFIX
        return StoredValue(
            ValueProvider.UNKNOWN,
            size,
            prefix=prefix.decode("ascii"),
            detail="unrecognized k8s:enc: provider prefix",
        )
    provider, base = matched
    start = len(base)
    prefix_text = base.decode("ascii")
    if provider == ValueProvider.KMS_V2:
        return _classify_kms_v2(value, start, prefix_text)
    candidates = _name_candidates(value, start)
    if not candidates:
        return StoredValue(
            provider, size, prefix=prefix_text, detail="no ':' ends the key name after the prefix"
        )
    first_problem: str | None = None
    for offset in candidates:
        problem = _layout_problem(provider, value, start + offset + 1)
        if problem is None:
            name = value[start : start + offset].decode("ascii")
            return StoredValue(provider, size, prefix=prefix_text, name=name)
        first_problem = first_problem or problem
    name = value[start : start + candidates[0]].decode("ascii")
    return StoredValue(provider, size, prefix=prefix_text, name=name, detail=first_problem)


def _classify_kms_v2(value: bytes, start: int, prefix_text: str) -> StoredValue:
    size = len(value)
    # kms v2 provider names cannot contain ':', so the first ':' ends the name exactly.
    end = value.find(b":", start, start + _NAME_SCAN_LIMIT)
    if end <= start:
        detail = "empty kms v2 provider name" if end == start else "no ':' ends the provider name"
        return StoredValue(ValueProvider.KMS_V2, size, prefix=prefix_text, detail=detail)
    name = value[start:end].decode("utf-8", "replace")
    try:
        obj = decode_encrypted_object(value[end + 1 :])
    except FormatError as err:
        return StoredValue(
            ValueProvider.KMS_V2,
            size,
            prefix=prefix_text,
            name=name,
            detail=f"EncryptedObject is invalid: {err.what}",
        )
    return StoredValue(ValueProvider.KMS_V2, size, prefix=prefix_text, name=name, kms_v2=obj)
