"""A secret-free, JSON-ready description of a loaded EncryptionConfiguration.

Keys appear by name and fingerprint (``sha256:`` + 16 hex digits of the key's
SHA-256), never by value.
"""

from __future__ import annotations

from typing import Any

from secretkit.core.encryption_config.model import (
    EncryptionConfig,
    IdentityProvider,
    KMSProvider,
    LocalKeyProvider,
    Provider,
)


def describe_provider(provider: Provider) -> dict[str, Any]:
    """One provider as a dict: ``type`` plus keys (name, fingerprint) or kms settings."""
    if isinstance(provider, IdentityProvider):
        return {"type": "identity"}
    if isinstance(provider, LocalKeyProvider):
        return {
            "type": provider.type.value,
            "keys": [
                {"name": key.name, "fingerprint": key.fingerprint, "size": len(key.secret)}
                for key in provider.keys
            ],
        }
    return {
        "type": "kms",
        "name": provider.name,
        "endpoint": provider.endpoint,
        "apiVersion": provider.api_version,
        "timeout_seconds": provider.timeout_seconds,
        "cachesize": provider.cachesize,
    }


def describe_encryption_config(cfg: EncryptionConfig) -> dict[str, Any]:
    """The whole config: source, hash and each rule's resources and providers in order."""
    return {
        "source": cfg.source,
        "hash": cfg.hash,
        "rules": [
            {
                "resources": list(rule.resources),
                "providers": [describe_provider(p) for p in rule.providers],
            }
            for rule in cfg.rules
        ],
    }


def provider_summary(provider: Provider) -> str:
    """A one-line, secret-free rendering for text output."""
    if isinstance(provider, IdentityProvider):
        return "identity (plaintext)"
    if isinstance(provider, LocalKeyProvider):
        keys = ", ".join(f"{k.name} [{k.fingerprint}]" for k in provider.keys)
        return f"{provider.type.value}: {keys}"
    assert isinstance(provider, KMSProvider)
    timeout = f"{provider.timeout_seconds:g}s"
    extra = f", cachesize {provider.cachesize}" if provider.cachesize is not None else ""
    return (
        f"kms {provider.api_version} {provider.name!r} at {provider.endpoint} "
        f"(timeout {timeout}{extra})"
    )
