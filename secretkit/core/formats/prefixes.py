"""Storage prefixes of the encryption providers, and key-name matching.

Every encrypted value starts with ``k8s:enc:<type>:<version>:<name>:``. For the
local-key providers ``<name>`` is a key name, which may itself contain ``:``
(``gcm:key:3`` is legal), so names are matched with a prefix test, never by
splitting on ``:``.
"""

from __future__ import annotations

from collections.abc import Iterable

from secretkit.core.formats.model import ValueProvider
from secretkit.errors import ConfigError

ENCRYPTED_PREFIX = b"k8s:enc:"
AESCBC_PREFIX = b"k8s:enc:aescbc:v1:"
AESGCM_PREFIX = b"k8s:enc:aesgcm:v1:"
SECRETBOX_PREFIX = b"k8s:enc:secretbox:v1:"
KMS_V1_PREFIX = b"k8s:enc:kms:v1:"
KMS_V2_PREFIX = b"k8s:enc:kms:v2:"

#: provider → the prefix up to and including the version segment
PROVIDER_PREFIXES: dict[ValueProvider, bytes] = {
    ValueProvider.AESCBC: AESCBC_PREFIX,
    ValueProvider.AESGCM: AESGCM_PREFIX,
    ValueProvider.SECRETBOX: SECRETBOX_PREFIX,
    ValueProvider.KMS_V1: KMS_V1_PREFIX,
    ValueProvider.KMS_V2: KMS_V2_PREFIX,
}


def prefix_for(provider: str, name: str) -> bytes:
    """Return the full storage prefix, e.g. ``b"k8s:enc:aesgcm:v1:<name>:"``.

    ``provider`` is a :class:`ValueProvider` value (``aescbc``, ``aesgcm``,
    ``secretbox``, ``kms-v1``, ``kms-v2``); ``name`` is the key name for local-key
    providers and the kms provider name for kms. ``identity`` has no prefix (``b""``).
    """
    if provider == ValueProvider.IDENTITY:
        return b""
    try:
        base = PROVIDER_PREFIXES[ValueProvider(provider)]
    except (ValueError, KeyError):
        raise ConfigError(
            f"no storage prefix for provider {provider!r}",
            hint="use one of: " + ", ".join(p.value for p in PROVIDER_PREFIXES),
        ) from None
    if not name:
        raise ConfigError(f"{provider} needs a non-empty key or provider name")
    if provider == ValueProvider.KMS_V2 and ":" in name:
        raise ConfigError(f"kms v2 provider name {name!r} must not contain ':'")
    return base + name.encode() + b":"


def matching_key_names(rest: bytes, names: Iterable[str]) -> list[str]:
    """Every name in ``names`` (in the given order) for which ``rest`` starts with ``name:``.

    Upstream tries each of these keys in configuration order; this is the list to try.
    """
    return [name for name in names if name and rest.startswith(name.encode() + b":")]


def match_key_name(rest: bytes, names: Iterable[str]) -> str | None:
    """The longest configured name such that ``rest`` starts with ``name + ":"``.

    ``rest`` is what follows ``b"k8s:enc:<type>:v1:"``. Longest wins because with
    names ``a`` and ``a:b`` a value written by ``a:b`` also starts with ``a:``.
    """
    best: str | None = None
    for name in matching_key_names(rest, names):
        if best is None or len(name) > len(best):
            best = name
    return best
