"""Is a stored value stale? Decided from its prefix alone (no decryption).

A value is *stale* when the current write provider did not write it: another
provider type, another local key, another kms provider, or (kms v2) another key_id
than the plugin's Status reports, or the legacy DEK type 0. The apiserver rewrites
exactly these values on a no-op update, so ``--only-stale`` rewrites only them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from secretkit.encryption_config.model import Provider
from secretkit.staleness import is_stale_value


def is_stale(
    value: bytes,
    providers: Provider | Sequence[Provider],
    *,
    kms_key_ids: Mapping[str, str] | None = None,
) -> bool:
    """True when the write provider (the chain's first, or the one given) did not write it.

    Pass the resource's whole provider chain: a local key name is only known exactly
    against every configured name (``k1`` and ``k1:x`` in different providers).
    ``kms_key_ids`` maps kms v2 provider names to the plugin's current Status
    key_id; without an entry only the provider name is compared.
    """
    chain = (providers,) if not isinstance(providers, Sequence) else tuple(providers)
    return is_stale_value(value, chain, kms_key_ids=kms_key_ids)
