"""Result types of value classification and KMS v2 decoding (pure data)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from secretkit.core.encryption_config.model import ProviderType


class ValueProvider(StrEnum):
    """What wrote a stored etcd value, as far as the bytes tell (no keys needed).

    The string values are part of the documented ``-o json`` schemas.
    """

    IDENTITY = "identity"
    AESCBC = "aescbc"
    AESGCM = "aesgcm"
    SECRETBOX = "secretbox"
    KMS_V1 = "kms-v1"
    KMS_V2 = "kms-v2"
    UNKNOWN = "unknown"

    @property
    def provider_type(self) -> ProviderType | None:
        """The EncryptionConfiguration provider type that reads such values.

        The two enums are one idea seen from two sides: a config names five provider
        types; stored bytes also tell the kms API version, or nothing (``unknown``).
        This is the one mapping between them.
        """
        return _PROVIDER_TYPE.get(self)

    @property
    def is_local(self) -> bool:
        """True for the local-key kinds (aescbc, aesgcm, secretbox)."""
        return self in (ValueProvider.AESCBC, ValueProvider.AESGCM, ValueProvider.SECRETBOX)


_PROVIDER_TYPE: dict[ValueProvider, ProviderType] = {
    ValueProvider.IDENTITY: ProviderType.IDENTITY,
    ValueProvider.AESCBC: ProviderType.AESCBC,
    ValueProvider.AESGCM: ProviderType.AESGCM,
    ValueProvider.SECRETBOX: ProviderType.SECRETBOX,
    ValueProvider.KMS_V1: ProviderType.KMS,
    ValueProvider.KMS_V2: ProviderType.KMS,
}


class PlaintextEncoding(StrEnum):
    """How a plaintext object is serialized."""

    PROTOBUF = "protobuf"  # starts with b"k8s\x00" (runtime.Unknown envelope)
    JSON = "json"  # starts with "{" (CRDs, JSON-stored types)
    EMPTY = "empty"
    OTHER = "other"


class DEKSourceType(IntEnum):
    """KMS v2 ``EncryptedObject.encryptedDEKSourceType``."""

    AES_GCM_KEY = 0
    HKDF_SHA256_XNONCE_AES_GCM_SEED = 1


@dataclass(frozen=True)
class EncryptedObject:
    """A decoded KMS v2 ``EncryptedObject`` (fields 1-5)."""

    encrypted_data: bytes = field(repr=False)
    key_id: str
    encrypted_dek_source: bytes = field(repr=False)
    annotations: Mapping[str, bytes] = field(default_factory=dict)
    encrypted_dek_source_type: DEKSourceType = DEKSourceType.AES_GCM_KEY


@dataclass(frozen=True)
class StoredValue:
    """The classification of one etcd value. Never holds plaintext or key material.

    ``prefix`` is the provider prefix up to and including the version segment, e.g.
    ``k8s:enc:aesgcm:v1:``. ``name`` is the kms provider name (exact) or, for
    local-key providers, a best-effort key name guess that may be wrong when names
    contain ``:``; match configured names with :func:`match_key_name` instead.
    """

    provider: ValueProvider
    size: int
    prefix: str = ""
    name: str | None = None
    encoding: PlaintextEncoding | None = None
    api_version: str | None = None
    kind: str | None = None
    kms_v2: EncryptedObject | None = None
    detail: str | None = None


@dataclass(frozen=True)
class RuntimeUnknown:
    """A decoded ``runtime.Unknown`` envelope (the body of a ``k8s\\x00`` value).

    ``raw`` is the protobuf-encoded object itself; it is plaintext, so it never
    appears in ``repr``.
    """

    api_version: str
    kind: str
    raw: bytes = field(repr=False)
    content_encoding: str = ""
    content_type: str = ""
