"""Is a stored value stale? Decided from its prefix alone (no decryption).

A value is *stale* when the current write provider did not write it: another
provider type, another local key, another kms provider, or (kms v2) another key_id
than the plugin's Status reports, or the legacy DEK type 0. The apiserver rewrites
exactly these values on a no-op update, so ``--only-stale`` rewrites only them.
"""

from __future__ import annotations

from collections.abc import Mapping

from secretkit.encryption_config.model import (
    IdentityProvider,
    KMSProvider,
    LocalKeyProvider,
    Provider,
)
from secretkit.formats import classify_value, match_key_name
from secretkit.formats.model import DEKSourceType, ValueProvider
from secretkit.formats.prefixes import PROVIDER_PREFIXES


def is_stale(
    value: bytes,
    write_provider: Provider,
    *,
    kms_key_ids: Mapping[str, str] | None = None,
) -> bool:
    """True when ``value`` was not written by ``write_provider`` (its first key).

    ``kms_key_ids`` maps kms v2 provider names to the plugin's current Status
    key_id; without an entry only the provider name is compared.
    """
    stored = classify_value(value)
    if isinstance(write_provider, IdentityProvider):
        return stored.provider != ValueProvider.IDENTITY
    if isinstance(write_provider, LocalKeyProvider):
        wanted = ValueProvider(write_provider.type.value)
        if stored.provider != wanted or not write_provider.keys:
            return True
        rest = value[len(PROVIDER_PREFIXES[wanted]) :]
        names = [k.name for k in write_provider.keys]
        return match_key_name(rest, names) != write_provider.keys[0].name
    if isinstance(write_provider, KMSProvider):
        if write_provider.api_version == "v1":
            return not (
                stored.provider == ValueProvider.KMS_V1 and stored.name == write_provider.name
            )
        if stored.provider != ValueProvider.KMS_V2 or stored.name != write_provider.name:
            return True
        obj = stored.kms_v2
        if obj is None:
            return True
        if obj.encrypted_dek_source_type != DEKSourceType.HKDF_SHA256_XNONCE_AES_GCM_SEED:
            return True
        current = (kms_key_ids or {}).get(write_provider.name)
        return current is not None and obj.key_id != current
    return True  # pragma: no cover - exhaustive over the Provider union
