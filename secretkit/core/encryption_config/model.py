"""Frozen dataclasses for an EncryptionConfiguration (apiserver.config.k8s.io/v1).

Pure data: loading and validation live in :mod:`.load` and :mod:`.validate`.
Key secrets are held as bytes and never appear in ``repr``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum


class ProviderType(StrEnum):
    """The provider kinds an EncryptionConfiguration entry can hold."""

    IDENTITY = "identity"
    AESCBC = "aescbc"
    AESGCM = "aesgcm"
    SECRETBOX = "secretbox"
    KMS = "kms"


def key_fingerprint(secret: bytes) -> str:
    """A short, non-reversible identifier of key material: ``sha256:`` + 16 hex digits.

    Every place that shows a key (``config show``, rotation diffs, KEK key_ids) uses
    this, so the same key always shows the same fingerprint.
    """
    return "sha256:" + hashlib.sha256(secret).hexdigest()[:16]


def content_hash(data: bytes) -> str:
    """``sha256:<hex>`` of a config file's bytes, the form the apiserver's metric reports."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Key:
    """A named local key (aescbc, aesgcm, secretbox). ``secret`` is the decoded bytes."""

    name: str
    secret: bytes = field(repr=False)

    @property
    def fingerprint(self) -> str:
        """A short, non-reversible identifier of the key: ``sha256:`` + 16 hex digits."""
        return key_fingerprint(self.secret)


@dataclass(frozen=True)
class IdentityProvider:
    """Stores plaintext."""

    type: ProviderType = ProviderType.IDENTITY


@dataclass(frozen=True)
class LocalKeyProvider:
    """aescbc, aesgcm or secretbox with an ordered key list; the first key writes."""

    type: ProviderType
    keys: tuple[Key, ...]


@dataclass(frozen=True)
class KMSProvider:
    """A kms provider. ``api_version`` is ``v1`` or ``v2``; ``timeout_seconds`` defaults to 3."""

    name: str
    endpoint: str
    api_version: str = "v1"
    timeout_seconds: float = 3.0
    cachesize: int | None = None
    type: ProviderType = ProviderType.KMS


Provider = IdentityProvider | LocalKeyProvider | KMSProvider

#: kms ``apiVersion`` values the apiserver accepts
KMS_API_VERSIONS = ("v1", "v2")
#: kms defaults applied by the loader (upstream ``SetDefaults_KMSConfiguration``)
DEFAULT_KMS_API_VERSION = "v1"
DEFAULT_KMS_TIMEOUT_SECONDS = 3.0
DEFAULT_KMS_V1_CACHESIZE = 1000


@dataclass(frozen=True)
class ConfigProblem:
    """One validation finding: a field ``path``, what is wrong and how to fix it.

    Never carries secret material (key values are reported as ``REDACTED``).
    """

    path: str
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


@dataclass(frozen=True)
class ResourceRule:
    """One ``resources:`` entry: the resource names and their ordered providers."""

    resources: tuple[str, ...]
    providers: tuple[Provider, ...]


@dataclass(frozen=True)
class EncryptionConfig:
    """A loaded EncryptionConfiguration.

    ``raw`` is the exact file content; :attr:`hash` is what the apiserver reports in
    ``apiserver_encryption_config_controller_last_config_info``.
    """

    rules: tuple[ResourceRule, ...]
    raw: bytes = field(default=b"", repr=False)
    source: str = "<config>"

    @property
    def hash(self) -> str:
        """``sha256:<hex>`` of the raw file content, as the apiserver reports it."""
        return content_hash(self.raw)
