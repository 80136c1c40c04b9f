"""Is a stored value stale, or unreadable? Both are :mod:`secretkit.core.readability` verdicts.

A value is *stale* when the current write provider did not write it: another
provider type, another local key, another kms provider, or (kms v2) another key_id
than the plugin's Status reports, or the legacy DEK type 0. The apiserver rewrites
exactly these values on a no-op update, so ``--only-stale`` rewrites only them.

A value *no* provider of the chain can read is another matter (:func:`is_unreadable`):
a rewrite cannot fix it, the data is lost unless the key comes back. It is also
"stale" here, on purpose: ``--only-stale`` then sends it to the API server, whose error
names the object, instead of skipping it silently; ``--verify`` reports those
separately, as the audit's ``undecryptable`` finding does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from secretkit.core.encryption_config.model import Provider
from secretkit.core.formats import classify_value
from secretkit.core.readability import judge_chain


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
    return judge_chain(
        classify_value(value), value, _chain(providers), current_key_ids=kms_key_ids
    ).stale


def is_unreadable(value: bytes, providers: Provider | Sequence[Provider]) -> bool:
    """True when no provider of the chain would read ``value`` (judged from its bytes)."""
    return not judge_chain(classify_value(value), value, _chain(providers)).readable


def _chain(providers: Provider | Sequence[Provider]) -> tuple[Provider, ...]:
    return (providers,) if not isinstance(providers, Sequence) else tuple(providers)
