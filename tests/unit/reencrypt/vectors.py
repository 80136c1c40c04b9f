"""The positive upstream vectors (values written by the real apiserver), by provider."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from secretkit.core.encryption_config.model import Key, LocalKeyProvider, ProviderType

VECTORS: list[dict[str, Any]] = [
    v
    for v in json.loads((Path(__file__).parents[2] / "data" / "upstream-vectors.json").read_text())
    if not v["id"].startswith("neg-")
]
LOCAL = [v for v in VECTORS if v["provider"] in ("aescbc", "aesgcm", "secretbox")]
KMS = [v for v in VECTORS if v["provider"] == "kms-v2"]
IDENTITY = [v for v in VECTORS if v["provider"] == "identity"]


def stored(v: dict[str, Any]) -> bytes:
    """The exact etcd value upstream wrote."""
    return base64.b64decode(v["stored_b64"])


def local(provider: str, *names: str) -> LocalKeyProvider:
    """A local-key provider with these key names (zero keys: only names matter here)."""
    return LocalKeyProvider(ProviderType(provider), tuple(Key(n, b"\x00" * 32) for n in names))
