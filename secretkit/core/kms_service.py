"""The KMS v2 service shape (Status/Encrypt/Decrypt) the core talks to.

The transformer chain resolves every ``kms`` provider through an object with this
shape, so the same chain serves the sandbox API stand-in (a gRPC client to the real
plugin), the audit and offline recovery (a key backend used in-process).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class KMSStatus:
    """What ``Status`` returns: ``version``, ``healthz`` (``ok`` or an error) and ``key_id``."""

    version: str
    healthz: str
    key_id: str

    @property
    def healthy(self) -> bool:
        """True when healthz is exactly ``ok``, as the apiserver requires."""
        return self.healthz == "ok"


@dataclass(frozen=True)
class KMSEncryptResult:
    """What ``Encrypt`` returns."""

    ciphertext: bytes = field(repr=False)
    key_id: str
    annotations: Mapping[str, bytes] = field(default_factory=dict)


class KMSService(Protocol):
    """A KMS v2 plugin, remote (gRPC) or in-process (a key backend)."""

    def status(self) -> KMSStatus:
        """Return the plugin's health and current key_id."""
        ...

    def encrypt(self, plaintext: bytes, uid: str) -> KMSEncryptResult:
        """Wrap ``plaintext`` (a DEK seed) with the current key."""
        ...

    def decrypt(
        self, ciphertext: bytes, uid: str, key_id: str, annotations: Mapping[str, bytes]
    ) -> bytes:
        """Unwrap ``ciphertext`` written under ``key_id``."""
        ...
