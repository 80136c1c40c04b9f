"""EncryptionConfiguration: the model, a strict loader, the validator and resource matching."""

from secretkit.core.durations import parse_duration
from secretkit.core.encryption_config.load import (
    EncryptionConfigInvalid,
    check_encryption_config,
    load_encryption_config,
    parse_encryption_config,
)
from secretkit.core.encryption_config.match import (
    etcd_prefixes_for,
    providers_for,
    resource_for_etcd_key,
)
from secretkit.core.encryption_config.model import (
    ConfigProblem,
    EncryptionConfig,
    IdentityProvider,
    Key,
    KMSProvider,
    LocalKeyProvider,
    Provider,
    ProviderType,
    ResourceRule,
)
from secretkit.core.encryption_config.validate import validate_encryption_config

__all__ = [
    "ConfigProblem",
    "EncryptionConfig",
    "EncryptionConfigInvalid",
    "IdentityProvider",
    "KMSProvider",
    "Key",
    "LocalKeyProvider",
    "Provider",
    "ProviderType",
    "ResourceRule",
    "check_encryption_config",
    "etcd_prefixes_for",
    "load_encryption_config",
    "parse_duration",
    "parse_encryption_config",
    "providers_for",
    "resource_for_etcd_key",
    "validate_encryption_config",
]
