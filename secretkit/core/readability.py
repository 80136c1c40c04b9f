"""The one judgement of a stored value: can the apiserver read it, and is it stale?

Every safety decision asks the same question about one value: given its bytes, its
etcd key, an EncryptionConfiguration and the KMS key_ids that will still decrypt,
would kube-apiserver read it, and would a rewrite change it? The prune gates, ``kms
rotate --retire-old``, ``reencrypt --only-stale``/``--verify`` and the audit's
*stale*/*undecryptable* verdicts all call :func:`judge_chain` (or :class:`Judge`,
which adds the key -> resource -> provider chain lookup), so they cannot disagree.

Pure and key-free: judged from the value's prefix (and a kms v2 value's
``EncryptedObject`` header), never by decrypting. A value is

* ``current``: the chain's first provider would read it, with its first key (local
  keys) or the plugin's current key_id (kms v2, when known);
* ``stale``: some provider of the chain reads it, but not as above (a rewrite through
  the apiserver changes it);
* ``unreadable``: no provider of the chain reads it: the provider type, local key
  name or kms provider name is not configured, a kms v2 header does not parse, or
  its key_id is not among the key_ids the backend will still decrypt;
* ``internal``: an apiserver-internal key (:data:`secretkit.core.layout.INTERNAL_KEYS`),
  written and read in plaintext by the apiserver itself, whatever the config.

Upstream reads by prefix in chain order: identity (no prefix) reads anything without
``k8s:enc:``; a local provider reads values of its type whose key name it holds; a
kms provider reads values of its API version and name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from secretkit.core.encryption_config.match import providers_for
from secretkit.core.encryption_config.model import (
    EncryptionConfig,
    IdentityProvider,
    KMSProvider,
    LocalKeyProvider,
    Provider,
)
from secretkit.core.formats import classify_value, match_key_name
from secretkit.core.formats.header import header_decides_key, value_header
from secretkit.core.formats.model import DEKSourceType, StoredValue, ValueProvider
from secretkit.core.formats.prefixes import KMS_V1_PREFIX
from secretkit.core.layout import KeyOwner, Layout

#: the local-key value kinds and the provider type that reads each (from ValueProvider)
LOCAL_TYPES: Mapping[ValueProvider, str] = {
    kind: kind.provider_type.value
    for kind in ValueProvider
    if kind.is_local and kind.provider_type is not None
}

#: True for a kms v2 key_id that will no longer decrypt (a retired backend key version),
#: whichever provider name stored it: two providers may share one backend key
Retired = Callable[[str], bool]


class Verdict(StrEnum):
    """What a rewrite would do to a value, and whether the apiserver can read it."""

    CURRENT = "current"
    STALE = "stale"
    UNREADABLE = "unreadable"
    INTERNAL = "internal"


#: how bad each verdict is, for a key read under several chains (``events/``)
_RANK = {Verdict.INTERNAL: 0, Verdict.CURRENT: 1, Verdict.STALE: 2, Verdict.UNREADABLE: 3}


@dataclass(frozen=True, slots=True)
class Judgement:
    """The verdict on one value, and why (content-free: names, never bytes)."""

    verdict: Verdict
    reason: str = ""
    #: index in the chain of the provider that would read it (None: none would)
    reader_index: int | None = None
    #: the local key name that wrote it, as far as the config tells
    key_name: str | None = None

    @property
    def readable(self) -> bool:
        """True unless no provider of the chain would read the value."""
        return self.verdict is not Verdict.UNREADABLE

    @property
    def stale(self) -> bool:
        """True when a rewrite would change it (unreadable values count: see module doc)."""
        return self.verdict in (Verdict.STALE, Verdict.UNREADABLE)


def describe(provider: Provider) -> str:
    """A provider the way messages name it: ``aesgcm key 'k1'``, ``kms v2 provider 'x'``."""
    if isinstance(provider, IdentityProvider):
        return "identity"
    if isinstance(provider, LocalKeyProvider):
        first = provider.keys[0].name if provider.keys else "?"
        return f"{provider.type.value} key {first!r}"
    return f"kms {provider.api_version} provider {provider.name!r}"


def local_key_name(
    stored: StoredValue, value: bytes, chain: Sequence[Provider]
) -> str | None:
    """The configured local key name that wrote ``value`` (names may contain ``:``).

    Matched by prefix, longest first, against every key of the value's provider type
    in the chain; when none matches, the classifier's guess (the first segment).
    """
    ptype = LOCAL_TYPES.get(stored.provider)
    if ptype is None:
        return None
    names = [
        k.name
        for p in chain
        if isinstance(p, LocalKeyProvider) and p.type.value == ptype
        for k in p.keys
    ]
    matched = match_key_name(value[len(stored.prefix) :], names) if names else None
    return matched or stored.name


def kms_v1_name(value: bytes, providers: Sequence[Provider]) -> str | None:
    """The configured kms v1 provider that wrote ``value``, matched by prefix.

    kms v1 names may contain ``:`` (the validator allows it), and the value's layout
    after ``<name>:`` is binary, so the classifier's guess at the name (the first
    segment, unless the layout fits a longer one) can be wrong: ``k8s:enc:kms:v1:a:b:...``
    is provider ``a:b`` when that is configured. Longest first, as for local key names.
    """
    names = [p.name for p in providers if isinstance(p, KMSProvider) and p.api_version == "v1"]
    return match_key_name(value[len(KMS_V1_PREFIX) :], names) if names else None


def reader_index(
    stored: StoredValue, value: bytes, chain: Sequence[Provider]
) -> int | None:
    """Index of the first provider of ``chain`` that would read ``value``, or None."""
    kind = stored.provider
    if kind is ValueProvider.IDENTITY:
        for index, provider in enumerate(chain):
            if isinstance(provider, IdentityProvider):
                return index
        return None
    ptype = LOCAL_TYPES.get(kind)
    if ptype is not None:
        body = value[len(stored.prefix) :]
        for index, provider in enumerate(chain):
            if (
                isinstance(provider, LocalKeyProvider)
                and provider.type.value == ptype
                and match_key_name(body, [k.name for k in provider.keys]) is not None
            ):
                return index
        return None
    if kind is ValueProvider.KMS_V2:
        version, name = "v2", stored.name
    elif kind is ValueProvider.KMS_V1:
        version, name = "v1", kms_v1_name(value, chain)
    else:
        return None
    for index, provider in enumerate(chain):
        if (
            isinstance(provider, KMSProvider)
            and provider.api_version == version
            and provider.name == name
        ):
            return index
    return None


def judge_chain(
    stored: StoredValue,
    value: bytes,
    chain: Sequence[Provider],
    *,
    current_key_ids: Mapping[str, str] | None = None,
    retired: Retired | None = None,
) -> Judgement:
    """Judge one classified value against one resource's provider chain.

    ``current_key_ids`` maps kms v2 provider names to the key_id the plugin reports
    now (a value under another key_id is stale); ``retired`` says which key_ids will
    no longer decrypt (a value under one is unreadable).
    """
    key_name = local_key_name(stored, value, chain)
    if stored.provider is ValueProvider.UNKNOWN:
        return Judgement(
            Verdict.UNREADABLE, stored.detail or "bytes match no known storage format"
        )
    if stored.provider is ValueProvider.KMS_V2 and stored.kms_v2 is None:
        return Judgement(Verdict.UNREADABLE, "kms v2 EncryptedObject does not parse")
    index = reader_index(stored, value, chain)
    if index is None:
        return Judgement(Verdict.UNREADABLE, _unreadable_reason(stored, key_name), None, key_name)
    obj = stored.kms_v2
    if obj is not None and retired is not None and retired(obj.key_id):
        return Judgement(
            Verdict.UNREADABLE,
            f"kms v2 key_id {obj.key_id!r} of provider {stored.name!r} will no longer "
            "decrypt (retired in the backend)",
            index,
            key_name,
        )
    write = chain[0]
    if index != 0:
        reader = chain[index]
        what = (
            f"{reader.type.value} key {key_name!r}"
            if isinstance(reader, LocalKeyProvider) and key_name
            else describe(reader)
        )
        return Judgement(
            Verdict.STALE,
            f"read by provider {index + 1} of {len(chain)} ({what}); "
            f"the config writes with {describe(write)}",
            index,
            key_name,
        )
    if isinstance(write, LocalKeyProvider) and key_name != write.keys[0].name:
        return Judgement(
            Verdict.STALE,
            f"key {key_name!r} is not the write key {write.keys[0].name!r}",
            index,
            key_name,
        )
    if obj is not None:
        if obj.encrypted_dek_source_type is not DEKSourceType.HKDF_SHA256_XNONCE_AES_GCM_SEED:
            return Judgement(
                Verdict.STALE, "kms v2 DEK source type 0 (legacy per-object DEK)", index
            )
        current = (current_key_ids or {}).get(stored.name or "")
        if current is not None and obj.key_id != current:
            return Judgement(
                Verdict.STALE,
                f"kms v2 key_id {obj.key_id!r} is not the plugin's current {current!r}",
                index,
            )
    return Judgement(Verdict.CURRENT, "", index, key_name)


def _unreadable_reason(stored: StoredValue, key_name: str | None) -> str:
    if stored.provider is ValueProvider.IDENTITY:
        return "plaintext value but the config has no identity provider for this resource"
    if stored.provider in (ValueProvider.KMS_V1, ValueProvider.KMS_V2):
        version = "v2" if stored.provider is ValueProvider.KMS_V2 else "v1"
        return f"kms {version} provider {stored.name!r} is not in the config"
    return f"{stored.provider.value} key {key_name!r} is not in the config"


_INTERNAL = Judgement(
    Verdict.INTERNAL,
    "apiserver-internal key: written and read in plaintext whatever the config",
)


class Judge:
    """:func:`judge_chain` for etcd keys: key -> owning resource(s) -> provider chain.

    One per config (and key_id knowledge); chains are cached per key owner, and the
    verdict per (owner, value header): everything :func:`judge_chain` looks at is in
    the header (see ``formats.header``), so a whole-keyspace scan classifies a value
    only when its header is new, its verdict is "unreadable", or the header cannot be
    shared (legacy kms v2 values, a local key name that a longer configured name
    starts). ``config`` None means no ``--encryption-provider-config``: everything is
    read and written by identity.
    """

    def __init__(
        self,
        config: EncryptionConfig | None,
        *,
        layout: Layout | None = None,
        current_key_ids: Mapping[str, str] | None = None,
        retired: Retired | None = None,
    ) -> None:
        self.config = config
        self.layout = layout or Layout()
        self.current_key_ids = dict(current_key_ids or {})
        self.retired = retired
        self._chains: dict[tuple[str, str], tuple[Provider, ...]] = {}
        self._by_header: dict[tuple[tuple[tuple[str, str], ...], bytes], Judgement] = {}

    def chain(self, group: str, resource: str) -> tuple[Provider, ...]:
        """The provider chain kube-apiserver uses for ``resource`` in ``group``."""
        found = self._chains.get((group, resource))
        if found is None:
            if self.config is None:
                found = (IdentityProvider(),)
            else:
                found = providers_for(self.config, resource, group)
            self._chains[(group, resource)] = found
        return found

    def chains_of(self, owner: KeyOwner) -> list[tuple[Provider, ...]]:
        """Every chain that may read a key of ``owner`` (none for internal keys).

        A key the layout table does not know (``kind == "unknown"``, no group in its
        path) may belong to a resource of any group: every chain a rule could give a
        resource of that name is a candidate, and the worst verdict counts.
        """
        if owner.kind == "unknown" and len(owner.resources) == 1 and not owner.resources[0][0]:
            resource = owner.resources[0][1]
            return [self.chain(group, resource) for group in self._groups_for(resource)]
        return [self.chain(group, resource) for group, resource in owner.resources]

    def _groups_for(self, resource: str) -> list[str]:
        """The core group and every group a rule names for ``resource`` (or ``*``)."""
        groups = [""]
        for rule in self.config.rules if self.config is not None else ():
            for name in rule.resources:
                head, _, group = name.partition(".")
                if name == "*.*":
                    group = _ANY_OTHER_GROUP  # a group no rule names: only *.* matches
                elif not group or head not in (resource, "*"):
                    continue
                if group not in groups:
                    groups.append(group)
        return groups

    def judge(self, key: bytes | str, value: bytes) -> Judgement:
        """The verdict on ``value`` stored at ``key``."""
        owner = self.layout.owner(key)
        return self.judge_owned(owner, value)

    def judge_owned(
        self, owner: KeyOwner, value: bytes
    ) -> Judgement:
        """:meth:`judge` for a key whose owner is already known."""
        if owner.kind == "internal":
            return _INTERNAL
        header = value_header(value)
        memo = (owner.resources, header) if header is not None else None
        if memo is not None:
            known = self._by_header.get(memo)
            if known is not None:
                return known
        chains = self.chains_of(owner) or [self.chain("", "")]
        stored = classify_value(value)
        worst: Judgement | None = None
        for chain in chains:
            found = judge_chain(
                stored,
                value,
                chain,
                current_key_ids=self.current_key_ids,
                retired=self.retired,
            )
            if worst is None or _RANK[found.verdict] > _RANK[worst.verdict]:
                worst = found
        assert worst is not None
        # only readable verdicts are shared: an unreadable value's reason names what
        # the classifier read from its own bytes, and such values are reported one by one
        if (
            memo is not None
            and worst.readable
            and len(self._by_header) < _HEADER_MEMO_LIMIT
            and _header_decides(stored, memo[1], chains)
        ):
            self._by_header[memo] = worst
        return worst


#: stands for "some group no rule names" when resolving an unknown key's chains
_ANY_OTHER_GROUP = "\x00any-other-group"

#: distinct (owner, header) verdicts kept; a cluster has a handful per resource
_HEADER_MEMO_LIMIT = 4096


def _header_decides(
    stored: StoredValue, header: bytes, chains: Sequence[Sequence[Provider]]
) -> bool:
    """True when every value with ``header`` gets the verdict this one got."""
    obj = stored.kms_v2
    if obj is not None and obj.encrypted_dek_source_type is DEKSourceType.AES_GCM_KEY:
        return False  # legacy values each carry their own DEK: a header of their own
    ptype = LOCAL_TYPES.get(stored.provider)
    if ptype is None:
        return True
    configured = [
        k.name.encode()
        for chain in chains
        for p in chain
        if isinstance(p, LocalKeyProvider) and p.type.value == ptype
        for k in p.keys
    ]
    return header_decides_key(header[len(stored.prefix) : -1], configured)
