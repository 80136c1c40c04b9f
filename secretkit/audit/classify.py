"""Turn one stored etcd value into an :class:`ObjectRecord` with findings.

Classification reads only the value's prefix and, for KMS v2, its ``EncryptedObject``
header, so it needs no key. Given an EncryptionConfiguration it also decides
*staleness* (not written by the current write provider/key) and whether the config can
read the value at all, by comparing the provider type, key name and kms provider name
in the prefix against the config. With a :class:`~secretkit.core.transformers.TransformerSet`
(``--decrypt-check``) every value is decrypted to prove it is readable; the plaintext
is dropped at once and never reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from secretkit.audit.keys import (
    INTERNAL_RESOURCE,
    OTHER_RESOURCE,
    KeyParts,
    KeySplitter,
    resource_matches,
)
from secretkit.audit.model import FindingKind, ObjectRecord, SummaryKey, summary_label
from secretkit.core.encryption_config import providers_for
from secretkit.core.encryption_config.model import (
    EncryptionConfig,
    IdentityProvider,
    LocalKeyProvider,
    Provider,
)
from secretkit.core.formats import (
    AESCBC_PREFIX,
    AESGCM_PREFIX,
    PROTOBUF_MAGIC,
    SECRETBOX_PREFIX,
    classify_value,
    header_decides_key,
    value_header,
)
from secretkit.core.formats.model import (
    DEKSourceType,
    PlaintextEncoding,
    StoredValue,
    ValueProvider,
)
from secretkit.core.readability import LOCAL_TYPES, judge_chain, kms_v1_name, local_key_name
from secretkit.core.readability import Verdict as ReadVerdict
from secretkit.core.transformers import HeaderReader, TransformerSet
from secretkit.errors import SecretkitError


@dataclass(frozen=True)
class ScopePolicy:
    """Which keys the audit looks at and which resources must be encrypted.

    ``resources`` (explicit ``--resources``) wins; otherwise with a config the
    resources it encrypts are in scope; ``all_resources`` widens the scope to every
    key under the prefix without changing which resources are *protected*.
    """

    resources: tuple[str, ...] = ("secrets",)
    explicit: bool = False
    all_resources: bool = False
    config: EncryptionConfig | None = None

    def encrypted_by_config(self, parts: KeyParts) -> bool:
        """True when the config's write provider for this resource is not identity."""
        if self.config is None:
            return False
        providers = providers_for(self.config, parts.resource, parts.group)
        return not isinstance(providers[0], IdentityProvider)

    def protected(self, parts: KeyParts) -> bool:
        """True when plaintext for this resource is a finding (never for internal keys)."""
        if parts.resource == INTERNAL_RESOURCE:
            return False
        if self.explicit or self.config is None:
            return any(resource_matches(parts, r) for r in self.resources)
        return self.encrypted_by_config(parts)

    def in_scope(self, parts: KeyParts) -> bool:
        """True when the audit should count this key."""
        return self.all_resources or self.protected(parts)


@dataclass(frozen=True)
class _Scope:
    """What the classifier needs to know about one resource (cached per resource)."""

    resource: str
    group: str
    qualified: str
    in_scope: bool
    protected: bool
    providers: tuple[Provider, ...]
    identity_row: SummaryKey
    #: an apiserver-internal key: plaintext by design, never a finding
    internal: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """What every in-scope value with one header gets (see ``formats.header``).

    ``findings`` hold for every such value that ``reader`` (the decrypt check, when
    one is due) opens; a value it cannot open is classified on its own.
    """

    row: SummaryKey
    findings: tuple[FindingKind, ...]
    reader: HeaderReader | None


#: distinct (resource, header) verdicts kept; a cluster has a handful per resource
_VERDICT_MEMO_LIMIT = 4096
_MISSING: Final = object()


@dataclass
class Classifier:
    """Classify values one by one against an optional config, key_ids and transformers.

    ``kms_key_ids`` maps a kms v2 provider name to the plugin's current Status key_id;
    providers missing from it are judged without the key_id comparison (and noted).
    """

    policy: ScopePolicy
    prefix: str = "/registry"
    kms_key_ids: Mapping[str, str] = field(default_factory=dict)
    transformers: TransformerSet | None = None
    _provider_cache: dict[tuple[str, str], tuple[Provider, ...]] = field(
        default_factory=dict, repr=False
    )
    _scope_cache: dict[tuple[str, str], _Scope] = field(default_factory=dict, repr=False)
    _splitter: KeySplitter | None = field(default=None, repr=False)
    _head_scopes: dict[bytes, _Scope] = field(default_factory=dict, repr=False)
    _verdicts: dict[tuple[str, bytes], Verdict | None] = field(default_factory=dict, repr=False)
    _root: bytes | None = field(default=None, repr=False)

    def scope_of(self, key: bytes) -> _Scope:
        """The scope of ``key``'s resource, cached by the key's first segment (bytes)."""
        root = self._root
        if root is None:
            root = self._root = (self.splitter.base + "/").encode()
        head = b""
        if key.startswith(root):
            slash = key.find(b"/", len(root))
            head = key[:slash] if slash >= 0 else key
            scope = self._head_scopes.get(head)
            if scope is not None:
                return scope
        found = self.splitter.resource(key.decode("utf-8", "replace"))
        resource, group = found if found is not None else (OTHER_RESOURCE, "")
        scope = self._scope(resource, group)
        first = head[len(root) :]
        # a group ("apps") or services/<kind> needs the second segment too: not cached
        if head and b"." not in first and first != b"services" and len(self._head_scopes) < 4096:
            self._head_scopes[head] = scope
        return scope

    def verdict(self, scope: _Scope, value: bytes) -> Verdict | None:
        """The verdict shared by every value with ``value``'s header, or None.

        Worked out once per (resource, header) by the same judgement as
        :meth:`classify_in_scope`; None when the value has no header or its header
        does not decide the verdict (then the value is classified on its own).
        """
        header = value_header(value)
        if header is None:
            return None
        memo = (scope.qualified, header)
        found = self._verdicts.get(memo, _MISSING)
        if found is not _MISSING:
            return found  # type: ignore[return-value]
        verdict, shared = self._header_verdict(scope, value, header)
        if shared and len(self._verdicts) < _VERDICT_MEMO_LIMIT:
            self._verdicts[memo] = verdict
        return verdict

    def _header_verdict(
        self, scope: _Scope, value: bytes, header: bytes
    ) -> tuple[Verdict | None, bool]:
        """The header's verdict, and whether other values can share it (worth keeping)."""
        stored = _classify_fast(value)
        provider = stored.provider
        obj = stored.kms_v2
        if obj is not None and obj.encrypted_dek_source_type is DEKSourceType.AES_GCM_KEY:
            # legacy type-0 values each carry their own wrapped DEK, so each has a
            # header of its own: keeping them would only crowd out the shared ones
            return None, False
        if provider in LOCAL_TYPES:
            configured = [
                k.name.encode()
                for p in scope.providers
                if isinstance(p, LocalKeyProvider) and p.type.value == LOCAL_TYPES[provider]
                for k in p.keys
            ]
            if not header_decides_key(header[len(stored.prefix or "") : -1], configured):
                return None, True
        findings, _reasons, key_name, key_id, _dek = self._judgement(stored, value, scope)
        reader = None
        if (
            self.transformers is not None
            and not scope.internal
            and FindingKind.UNDECRYPTABLE not in findings
        ):
            transformer = self.transformers.for_resource(scope.resource, scope.group)
            reader = transformer.reader_for_header(value, header)
            if reader is None:
                return None, True
            if reader.stale and FindingKind.STALE not in findings:
                findings.append(FindingKind.STALE)
        provider_name = stored.name if provider in _KMS else None
        label = summary_label(provider.value, provider_name, key_name, key_id)
        row = SummaryKey(scope.qualified, provider.value, label)
        return Verdict(row, tuple(dict.fromkeys(findings)), reader), True

    def classify_scoped(
        self,
        scope: _Scope,
        key: bytes,
        value: bytes,
        mod_revision: int,
        historical: bool,
        *,
        names: bool = True,
    ) -> ObjectRecord | None:
        """:meth:`classify_in_scope` for a key whose :meth:`scope_of` is already known."""
        if not scope.in_scope:
            return None
        return self._classify(key, value, mod_revision, scope, None, historical, names)

    def _scope(self, resource: str, group: str) -> _Scope:
        """Scope facts of one resource, computed once: the policy walks the config."""
        scope = self._scope_cache.get((resource, group))
        if scope is None:
            parts = KeyParts(resource, group, None, "")
            scope = _Scope(
                resource=resource,
                group=group,
                qualified=parts.qualified_resource,
                in_scope=self.policy.in_scope(parts),
                protected=self.policy.protected(parts),
                providers=self._providers(parts),
                identity_row=SummaryKey(parts.qualified_resource, _IDENTITY.value, "-"),
                internal=resource == INTERNAL_RESOURCE,
            )
            self._scope_cache[(resource, group)] = scope
        return scope

    @property
    def splitter(self) -> KeySplitter:
        """The key splitter for the configured prefix."""
        if self._splitter is None:
            self._splitter = KeySplitter(self.prefix)
        return self._splitter

    def parts(self, key: str) -> KeyParts:
        """Split ``key`` below the configured prefix."""
        return self.splitter.split(key)

    def classify_in_scope(
        self,
        key: bytes,
        value: bytes,
        mod_revision: int,
        *,
        historical: bool = False,
        names: bool = True,
    ) -> ObjectRecord | None:
        """Classify one value, or return None when its resource is out of scope.

        The scan's hot path: namespace and name are only split out for objects with
        findings (the only ones ever listed), and not at all with ``names=False``
        (for a report whose list of offending objects is already full).
        """
        scope = self.scope_of(key)
        if not scope.in_scope:
            return None
        return self._classify(key, value, mod_revision, scope, None, historical, names)

    def classify(
        self,
        key: bytes,
        value: bytes,
        mod_revision: int,
        *,
        parts: KeyParts | None = None,
        historical: bool = False,
    ) -> ObjectRecord:
        """Classify one value (in scope or not); never raises for any input bytes."""
        if parts is None:
            parts = self.parts(key.decode("utf-8", "replace"))
        scope = self._scope(parts.resource, parts.group)
        return self._classify(key, value, mod_revision, scope, parts, historical)

    def _classify(
        self,
        key: bytes,
        value: bytes,
        mod_revision: int,
        scope: _Scope,
        parts: KeyParts | None,
        historical: bool,
        names: bool = True,
    ) -> ObjectRecord:
        # shown in reports: undecodable bytes replaced; the decrypt check gets the key
        # with them escaped, so the transformers' AAD is exactly the stored key's bytes
        key_text = key.decode("utf-8", "replace")
        stored = _classify_fast(value)
        provider = stored.provider
        findings, reasons, key_name, key_id, dek_type = self._judgement(stored, value, scope)
        if (
            self.transformers is not None
            and not scope.internal
            and FindingKind.UNDECRYPTABLE not in findings
        ):
            etcd_key = key.decode("utf-8", "surrogateescape")
            self._decrypt_check(etcd_key, value, scope, findings, reasons)
        namespace: str | None = None
        name = ""
        if findings and names:
            if parts is None:
                parts = self.parts(key_text)
            namespace, name = parts.namespace, parts.name
        elif parts is not None:
            namespace, name = parts.namespace, parts.name
        return ObjectRecord(
            key=key_text,
            resource=scope.qualified,
            namespace=namespace,
            name=name,
            provider=provider.value,
            size=len(value),
            mod_revision=mod_revision,
            provider_name=_provider_name(stored, value, scope.providers),
            key_name=key_name,
            key_id=key_id,
            dek_source_type=dek_type,
            encoding=stored.encoding.value if stored.encoding is not None else None,
            protected=scope.protected,
            findings=tuple(dict.fromkeys(findings)) if findings else (),
            reasons=tuple(reasons),
            historical=historical,
        )

    def _judgement(
        self, stored: StoredValue, value: bytes, scope: _Scope
    ) -> tuple[list[FindingKind], list[str], str | None, str | None, int | None]:
        """Findings, reasons, key name, key_id and DEK type from the bytes (no decryption)."""
        findings: list[FindingKind] = []
        reasons: list[str] = []
        providers = scope.providers
        key_name = local_key_name(stored, value, providers)
        obj = stored.kms_v2
        key_id = obj.key_id if obj is not None else None
        dek_type = int(obj.encrypted_dek_source_type) if obj is not None else None
        if scope.internal:
            # the apiserver writes these itself, in plaintext, whatever the config
            return findings, reasons, key_name, key_id, dek_type
        if stored.provider is _IDENTITY and scope.protected:
            findings.append(FindingKind.PLAINTEXT)
            reasons.append("stored unencrypted")
        if _malformed(stored):
            findings.append(FindingKind.UNKNOWN)
            reasons.append(stored.detail or "bytes match no known storage format")
        if self.policy.config is not None and stored.provider is not _UNKNOWN:
            judged = judge_chain(stored, value, providers, current_key_ids=self.kms_key_ids)
            if judged.verdict is ReadVerdict.UNREADABLE:
                findings.append(FindingKind.UNDECRYPTABLE)
                reasons.append(judged.reason)
            elif judged.verdict is ReadVerdict.STALE:
                findings.append(FindingKind.STALE)
                reasons.append(judged.reason)
        return findings, reasons, key_name, key_id, dek_type

    def _providers(self, parts: KeyParts) -> tuple[Provider, ...]:
        if self.policy.config is None:
            return ()
        cache_key = (parts.resource, parts.group)
        providers = self._provider_cache.get(cache_key)
        if providers is None:
            providers = providers_for(self.policy.config, parts.resource, parts.group)
            self._provider_cache[cache_key] = providers
        return providers

    def _decrypt_check(
        self,
        key: str,
        value: bytes,
        scope: _Scope,
        findings: list[FindingKind],
        reasons: list[str],
    ) -> None:
        """Decrypt through the transformer chain; keep only the verdict."""
        assert self.transformers is not None
        try:
            result = self.transformers.for_resource(scope.resource, scope.group).read(value, key)
        except SecretkitError as exc:
            # transformer errors name providers and keys, never plaintext or key material
            # findings and reasons are appended in pairs; an unreadable value is not
            # "stale" (a rewrite cannot read it either), so drop that verdict -- except
            # a kms key_id that is not the plugin's current one: with a wrong KEK or a
            # re-created backend key that is the clue to the cause, so it stays
            for index in reversed(range(len(findings))):
                if findings[index] is FindingKind.STALE and not reasons[index].startswith(
                    "kms v2 key_id"
                ):
                    del findings[index], reasons[index]
            findings.append(FindingKind.UNDECRYPTABLE)
            reasons.append(f"decrypt failed: {exc.what}")
            return
        if result.stale and FindingKind.STALE not in findings:
            findings.append(FindingKind.STALE)
            reasons.append("decrypted by a non-write provider or key (transformer verdict)")


_KMS = (ValueProvider.KMS_V1, ValueProvider.KMS_V2)
# enum member lookups are descriptor calls; the hot path uses plain module constants
_IDENTITY = ValueProvider.IDENTITY
_UNKNOWN = ValueProvider.UNKNOWN
_LOCAL_PREFIXES = tuple(
    (base, provider, base.decode("ascii"))
    for provider, base in (
        (ValueProvider.AESGCM, AESGCM_PREFIX),
        (ValueProvider.AESCBC, AESCBC_PREFIX),
        (ValueProvider.SECRETBOX, SECRETBOX_PREFIX),
    )
)
_PROTOBUF = StoredValue(ValueProvider.IDENTITY, 0, encoding=PlaintextEncoding.PROTOBUF)
_JSON = StoredValue(ValueProvider.IDENTITY, 0, encoding=PlaintextEncoding.JSON)


def _classify_fast(value: bytes) -> StoredValue:
    """:func:`classify_value`, minus the parse of plaintext bodies the audit never reports.

    Plaintext is most of a cluster's keyspace; parsing each JSON document or protobuf
    envelope for its kind would double the scan time. (``size`` is not used from here.)
    """
    if value.startswith(PROTOBUF_MAGIC):
        return _PROTOBUF
    if value.startswith(b"{"):
        return _JSON
    for base, provider, text in _LOCAL_PREFIXES:
        if value.startswith(base):
            # provider + a name guess is all the audit reads; with a config the exact
            # name comes from match_key_name, so the layout checks are not needed here
            start = len(base)
            end = value.find(b":", start, start + 512)
            if end > start:
                name = value[start:end].decode("ascii", "replace")
                return StoredValue(provider, 0, prefix=text, name=name)
            break
    return classify_value(value)


def _malformed(stored: StoredValue) -> bool:
    """True for bytes that are no valid object: unknown prefix, garbage, broken headers."""
    if stored.provider is ValueProvider.UNKNOWN:
        return True
    if stored.provider is ValueProvider.IDENTITY:
        # only "neither k8s\x00 nor JSON": the envelope itself is not parsed deeper,
        # since the apiserver stores whatever follows the magic
        return stored.encoding is PlaintextEncoding.OTHER
    return stored.provider is ValueProvider.KMS_V2 and stored.kms_v2 is None


def _provider_name(
    stored: StoredValue, value: bytes, providers: tuple[Provider, ...]
) -> str | None:
    """The kms provider name of a kms value (a configured kms v1 name may contain ':')."""
    if stored.provider is ValueProvider.KMS_V1:
        return kms_v1_name(value, providers) or stored.name
    return stored.name if stored.provider in _KMS else None
