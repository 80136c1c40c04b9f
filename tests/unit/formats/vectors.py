"""Loader for tests/data/upstream-vectors.json (values written by the real apiserver)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VECTORS_PATH = Path(__file__).resolve().parents[2] / "data" / "upstream-vectors.json"


@dataclass(frozen=True)
class Vector:
    """One upstream vector with its base64 fields decoded."""

    raw: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.raw["id"])

    @property
    def provider(self) -> str:
        return str(self.raw["provider"])

    @property
    def stored(self) -> bytes:
        return base64.b64decode(self.raw["stored_b64"])

    @property
    def prefix(self) -> bytes:
        return str(self.raw["stored_prefix"]).encode()

    @property
    def data(self) -> bytes:
        """What follows the full provider prefix."""
        assert self.stored.startswith(self.prefix)
        return self.stored[len(self.prefix) :]

    @property
    def aad(self) -> bytes:
        return str(self.raw["etcd_key"]).encode()

    @property
    def key(self) -> bytes:
        return base64.b64decode(self.raw["key_b64"])

    @property
    def expected_output(self) -> bytes:
        """What upstream's reader returned (differs from the plaintext for tampered CBC)."""
        read = self.raw["upstream_read"]
        return base64.b64decode(read.get("output_b64", self.raw["plaintext_b64"]))

    @property
    def plaintext(self) -> bytes:
        return base64.b64decode(self.raw["plaintext_b64"])

    @property
    def expected_error(self) -> bool:
        return bool(self.raw["expected_error"])

    def unwrap_dek_source(self, encrypted_dek_source: bytes, key_id: str) -> bytes:
        """The vectors' stand-in KMS: nonce(12) ‖ AES-256-GCM(KEK, nonce, seed, AAD=key_id)."""
        kek = base64.b64decode(self.raw["fake_kms"]["kek_b64"])
        nonce, sealed = encrypted_dek_source[:12], encrypted_dek_source[12:]
        return AESGCM(kek).decrypt(nonce, sealed, key_id.encode())


def load_vectors() -> list[Vector]:
    """Every vector, in file order."""
    return [Vector(entry) for entry in json.loads(VECTORS_PATH.read_text())]


ALL = load_vectors()


def select(*, provider: str | None = None, negative: bool | None = None) -> list[Vector]:
    """Vectors filtered by provider and by whether they are ``neg-*`` entries."""
    return [
        v
        for v in ALL
        if (provider is None or v.provider == provider)
        and (negative is None or v.id.startswith("neg-") == negative)
    ]
