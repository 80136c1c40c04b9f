"""Plaintexts and texts captured from a real kube-apiserver v1.36.2, read independently.

The ``*.*`` kms v2 keyspace is decrypted here with ``cryptography`` alone, following the
algorithm in tests/data/real-apiserver/README.md (seed = AES-GCM-open(KEK, wrap),
DEK = HKDF-Expand(seed, info = encryptedData[:32]), value = AES-GCM-open(DEK, ...)), so
that the stand-in is compared with what the real apiserver wrote, not with itself.
"""

from __future__ import annotations

import base64
import json
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from tests.data.real_apiserver import ROOT, STAR_STAR, values

_PREFIX = b"k8s:enc:kms:v2:real-kms:"


def _fields(data: bytes) -> dict[int, bytes]:
    """Length-delimited fields of a small protobuf message (EncryptedObject)."""
    out: dict[int, bytes] = {}
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            _, pos = _varint(data, pos)
            continue
        assert wire == 2, wire
        length, pos = _varint(data, pos)
        out[number] = data[pos : pos + length]
        pos += length
    return out


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


@cache
def star_star_plaintexts() -> dict[str, bytes]:
    """etcd key -> the plaintext the real apiserver stored (``k8s\\x00...`` or JSON)."""
    kek = base64.b64decode((STAR_STAR / "kek.b64").read_text().strip())
    out: dict[str, bytes] = {}
    for key, value in values(STAR_STAR):
        if not value.startswith(_PREFIX):
            out[key.decode()] = value
            continue
        fields = _fields(value[len(_PREFIX):])
        wrapped, key_id, data = fields[3], fields[2], fields[1]
        seed = AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], key_id)
        dek = HKDFExpand(hashes.SHA256(), 32, data[:32]).derive(seed)
        out[key.decode()] = AESGCM(dek).decrypt(data[32:44], data[44:], key)
    return out


def text_sections() -> dict[str, str]:
    """metrics-and-health.txt cut at its ``##### `` headings (heading -> body)."""
    sections: dict[str, str] = {}
    current = ""
    for line in (ROOT / "metrics-and-health.txt").read_text().splitlines(keepends=True):
        if line.startswith("##### "):
            current = line[6:].strip()
            sections.setdefault(current, "")
        elif current:
            sections[current] += line
    return sections


def http_bodies(section: str) -> dict[str, str]:
    """``=== GET <path> ...`` blocks of one section: path (with query) -> body."""
    bodies: dict[str, str] = {}
    path = ""
    for line in section.splitlines(keepends=True):
        if line.startswith("=== GET "):
            path = line[len("=== GET "):].split(" (HTTP", 1)[0].strip()
            bodies[path] = ""
        elif path:
            bodies[path] += line
    return bodies


def discovery(name: str) -> object:
    """A captured discovery document."""
    return json.loads((ROOT / "discovery" / name).read_text())


def discovery_headers(name: str) -> dict[str, str]:
    """A captured response's headers (lower-case names)."""
    headers: dict[str, str] = {}
    for line in (ROOT / "discovery" / name).read_text().splitlines()[1:]:
        if ":" in line:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
    return headers


def data_root() -> Path:
    """tests/data/real-apiserver."""
    return ROOT
