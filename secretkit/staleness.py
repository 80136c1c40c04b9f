"""Which provider of a chain would read a stored value, judged from its bytes alone.

Pure and key-free: the local key name is matched against every configured name of
that provider type (names may contain ``:``, so by prefix, longest first), a kms value
by its provider name and API version (kms v1 names, which may contain ``:`` too, by
prefix, longest first). The audit and ``reencrypt --only-stale`` both
decide *stale* from this, so they cannot disagree; the transformer chain reaches the
same verdict by decrypting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from secretkit.encryption_config.model import (
    IdentityProvider,
    KMSProvider,
    LocalKeyProvider,
    Provider,
)
from secretkit.formats import classify_value, match_key_name
from secretkit.formats.model import DEKSourceType, StoredValue, ValueProvider
from secretkit.formats.prefixes import KMS_V1_PREFIX

_LOCAL = {
    ValueProvider.AESCBC: "aescbc",
    ValueProvider.AESGCM: "aesgcm",
    ValueProvider.SECRETBOX: "secretbox",
}


def identify(
    stored: StoredValue, value: bytes, providers: tuple[Provider, ...]
) -> tuple[str | None, str | None, int | None]:
    """(key name, kms key_id, DEK source type) as far as bytes and config tell."""
    if stored.provider in _LOCAL:
        names = [
            k.name
            for p in providers
            if isinstance(p, LocalKeyProvider) and p.type.value == _LOCAL[stored.provider]
            for k in p.keys
        ]
        matched = match_key_name(value[len(stored.prefix) :], names) if names else None
        return matched or stored.name, None, None
    if stored.provider is ValueProvider.KMS_V2 and stored.kms_v2 is not None:
        return None, stored.kms_v2.key_id, int(stored.kms_v2.encrypted_dek_source_type)
    return None, None, None


def reader_index(
    stored: StoredValue, value: bytes, key_name: str | None, providers: tuple[Provider, ...]
) -> int | None:
    """Index of the first provider that would read this value, or None."""
    kms_version: str | None = None
    kms_name: str | None = None
    if stored.provider is ValueProvider.KMS_V2:
        kms_version, kms_name = "v2", stored.name
    elif stored.provider is ValueProvider.KMS_V1:
        # once per value, not per provider (the audit calls this for every value)
        kms_version, kms_name = "v1", kms_v1_name(value, providers)
    for index, provider in enumerate(providers):
        if stored.provider is ValueProvider.IDENTITY:
            if isinstance(provider, IdentityProvider):
                return index
        elif stored.provider in _LOCAL:
            if (
                isinstance(provider, LocalKeyProvider)
                and provider.type.value == _LOCAL[stored.provider]
                and match_key_name(value[len(stored.prefix) :], [k.name for k in provider.keys])
                is not None
            ):
                return index
        elif (
            kms_version is not None
            and isinstance(provider, KMSProvider)
            and provider.api_version == kms_version
            and provider.name == kms_name
        ):
            return index
    return None


def kms_v1_name(value: bytes, providers: Sequence[Provider]) -> str | None:
    """The configured kms v1 provider that wrote ``value``, matched by prefix.

    kms v1 names may contain ``:`` (the validator allows it), and the value's layout
    after ``<name>:`` is binary, so the classifier's guess at the name (the first
    segment, unless the layout fits a longer one) can be wrong: ``k8s:enc:kms:v1:a:b:...``
    is provider ``a:b`` when that is configured. Longest first, as for local key names
    (``a`` and ``a:b`` both prefix a value written by ``a:b``).
    """
    names = [p.name for p in providers if isinstance(p, KMSProvider) and p.api_version == "v1"]
    return match_key_name(value[len(KMS_V1_PREFIX) :], names) if names else None


def is_stale_value(
    value: bytes,
    providers: Sequence[Provider],
    *,
    kms_key_ids: Mapping[str, str] | None = None,
) -> bool:
    """True when ``providers[0]`` (its first key, the current kms key_id) did not write it.

    A value no provider of the chain can read (``reencrypt.stale.is_unreadable``, the
    audit's *undecryptable*) also returns True here, on purpose: ``--only-stale`` then
    sends it to the API server, whose error names the object, instead of skipping it
    silently. A rewrite does not fix such a value (only the lost key would), which is
    why ``reencrypt --verify`` checks ``is_unreadable`` first and reports these values
    as undecryptable, not as stale.
    """
    stored = classify_value(value)
    key_name, _, _ = identify(stored, value, tuple(providers))
    index = reader_index(stored, value, key_name, tuple(providers))
    if index is None or index != 0:
        return True
    write = providers[0]
    if isinstance(write, LocalKeyProvider):
        return key_name != write.keys[0].name
    if stored.provider is ValueProvider.KMS_V2:
        obj = stored.kms_v2
        if (
            obj is None
            or obj.encrypted_dek_source_type != DEKSourceType.HKDF_SHA256_XNONCE_AES_GCM_SEED
        ):
            return True
        current = (kms_key_ids or {}).get(stored.name or "")
        return current is not None and obj.key_id != current
    return False
