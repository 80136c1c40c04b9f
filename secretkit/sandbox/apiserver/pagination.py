"""List continue tokens in the apiserver's own format.

A token pins a list to one etcd revision and names the key the next page starts
at: base64 of ``{"v":"meta.k8s.io/v1","rv":<revision>,"start":"<key after prefix>\\x00"}``
(``k8s.io/apiserver/pkg/storage/continue.go``).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from secretkit.sandbox.apiserver.status import ApiError, bad_request

_VERSION = "meta.k8s.io/v1"


@dataclass(frozen=True)
class ContinueToken:
    """A decoded continue token: the pinned revision and the first key (relative)."""

    revision: int
    start: str


def encode_continue(revision: int, next_key_relative: str) -> str:
    """Encode a token whose next page starts right after ``next_key_relative``."""
    doc = {"v": _VERSION, "rv": revision, "start": next_key_relative + "\x00"}
    return base64.urlsafe_b64encode(
        json.dumps(doc, separators=(",", ":")).encode()
    ).decode().rstrip("=")


def decode_continue(token: str) -> ContinueToken:
    """Decode a token from a client; raises a 400 :class:`ApiError` when malformed."""
    try:
        padded = token + "=" * (-len(token) % 4)
        doc = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise _invalid() from exc
    if (
        not isinstance(doc, dict)
        or doc.get("v") != _VERSION
        or not isinstance(doc.get("rv"), int)
        or not isinstance(doc.get("start"), str)
        or doc["rv"] <= 0
    ):
        raise _invalid()
    start = doc["start"]
    if start.startswith("/") or ".." in start.split("/"):
        raise _invalid()
    return ContinueToken(revision=doc["rv"], start=start)


def _invalid() -> ApiError:
    return bad_request("continue key is not valid: the token is malformed")
