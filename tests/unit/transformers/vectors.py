"""The upstream vectors and the reader configurations their verdicts imply.

The vectors' ``upstream_read.reader`` is ``all-providers`` or ``identity-only``. The
all-providers reader is inferred from the stale verdicts: aescbc first (cbc-key-1
then cbc-key-2), then aesgcm, secretbox, the three kms v2 providers, identity last.
KMS plugins are stand-ins built from each vector's ``fake_kms`` (real AES-GCM wrap,
``nonce(12) ‖ AES-256-GCM(KEK, nonce, seed, AAD = key_id)``).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from secretkit.core.kms_service import KMSEncryptResult, KMSStatus
from secretkit.errors import BackendInvalidRequest

VECTORS_PATH = Path(__file__).parents[2] / "data" / "upstream-vectors.json"
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_PATH.read_text())


def _keys_of(ptype: str) -> list[tuple[str, str]]:
    found: dict[str, str] = {}
    for vector in VECTORS:
        for provider in vector["writer_config"]:
            if provider["type"] == ptype:
                for key in provider["keys"]:
                    found.setdefault(key["name"], key["secret"])
    return sorted(found.items(), key=lambda item: (item[0].startswith("gcm:"), item[0]))


def fake_kms_specs() -> dict[str, dict[str, Any]]:
    """kms provider name -> the vector's ``fake_kms`` (one per name)."""
    specs: dict[str, dict[str, Any]] = {}
    for vector in VECTORS:
        if vector["provider"] == "kms-v2":
            specs.setdefault(vector["provider_name"], vector["fake_kms"])
    return specs


KMS_ORDER = ("kms-prod", "vault-kms", "legacy-kms")


def _keys_yaml(ptype: str) -> str:
    lines = [f"      - {ptype}:", "          keys:"]
    for name, secret in _keys_of(ptype):
        lines += [f"            - name: {json.dumps(name)}", f"              secret: {secret}"]
    return "\n".join(lines) + "\n"


def all_providers_config() -> bytes:
    """The inferred ``all-providers`` reader as an EncryptionConfiguration file."""
    body = _keys_yaml("aescbc") + _keys_yaml("aesgcm") + _keys_yaml("secretbox")
    for name in KMS_ORDER:
        body += (
            f"      - kms:\n          apiVersion: v2\n          name: {name}\n"
            f"          endpoint: unix:///tmp/{name}.sock\n"
        )
    body += "      - identity: {}\n"
    return (
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
        "  - resources: ['*.*']\n    providers:\n" + body
    ).encode()


IDENTITY_ONLY_CONFIG = (
    b"apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
    b"resources:\n  - resources: ['*.']\n    providers:\n      - identity: {}\n"
)


class FakeKMS:
    """A KMS v2 service doing the vectors' wrap with a real AES-256-GCM KEK."""

    def __init__(self, kek: bytes, key_id: str, annotations: Mapping[str, bytes]) -> None:
        self._kek = AESGCM(kek)
        self.key_id = key_id
        self.annotations = dict(annotations)
        self.decrypt_calls = 0
        self.encrypt_calls = 0
        self.status_calls = 0

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> FakeKMS:
        annotations = {k: base64.b64decode(v) for k, v in spec["annotations_b64"].items()}
        return cls(base64.b64decode(spec["kek_b64"]), spec["key_id"], annotations)

    def status(self) -> KMSStatus:
        self.status_calls += 1
        return KMSStatus(version="v2", healthz="ok", key_id=self.key_id)

    def encrypt(self, plaintext: bytes, uid: str) -> KMSEncryptResult:
        self.encrypt_calls += 1
        nonce = os.urandom(12)
        wrapped = nonce + self._kek.encrypt(nonce, plaintext, self.key_id.encode())
        return KMSEncryptResult(wrapped, self.key_id, dict(self.annotations))

    def decrypt(
        self, ciphertext: bytes, uid: str, key_id: str, annotations: Mapping[str, bytes]
    ) -> bytes:
        self.decrypt_calls += 1
        try:
            return self._kek.decrypt(ciphertext[:12], ciphertext[12:], key_id.encode())
        except InvalidTag:
            raise BackendInvalidRequest("fake kms: unwrap failed") from None


def b64(text: str) -> bytes:
    """Decode standard base64."""
    return base64.b64decode(text)
