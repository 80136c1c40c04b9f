"""The apiserver's value transformer chain, rebuilt from an EncryptionConfiguration.

Pure: no I/O except through the injected :class:`~secretkit.core.kms_service.KMSService`
factory, randomness through ``rng``. Behaviour follows upstream
``k8s.io/apiserver/pkg/storage/value`` (prefix transformers) and
``encryptionconfig/config.go``:

- read: every provider whose prefix matches is tried in order; a failure moves on to
  the next match. ``identity`` has the empty prefix and refuses ``k8s:enc:`` data
  without recording an error, so an identity-only chain reports
  ``no matching prefix found`` for encrypted data.
- stale: not read by provider #0 (or, inside a local provider, not by key #0); for
  kms v2 also when the stored key_id differs from the plugin's current Status
  key_id or the DEK source is not an HKDF seed (type 1).
- write: provider #0 (key #0). kms v2 draws one 32-byte seed per key_id, wraps it
  with ONE Encrypt call and reuses it for every write until :meth:`refresh_kms`
  sees a new key_id.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from secretkit.core.encryption_config.match import providers_for, resource_for_etcd_key
from secretkit.core.encryption_config.model import (
    EncryptionConfig,
    IdentityProvider,
    Key,
    KMSProvider,
    LocalKeyProvider,
    Provider,
    ProviderType,
)
from secretkit.core.formats import (
    AESCBC_PREFIX,
    AESGCM_PREFIX,
    ENCRYPTED_PREFIX,
    SECRETBOX_PREFIX,
    DEKSourceType,
    EncryptedObject,
    ValueProvider,
    aescbc_decrypt,
    aescbc_encrypt,
    aesgcm_decrypt,
    aesgcm_encrypt,
    decode_encrypted_object,
    decode_kmsv1,
    encode_encrypted_object,
    encrypted_data_span,
    header_decides_key,
    kmsv1_open,
    kmsv2_decrypt_data,
    kmsv2_encrypt_data,
    kmsv2_open,
    matching_key_names,
    prefix_for,
    repeats_encrypted_data,
    secretbox_decrypt,
    secretbox_encrypt,
    validate_encrypted_object,
)
from secretkit.core.kms_service import KMSService
from secretkit.errors import (
    BackendError,
    BackendInvalidRequest,
    ConfigError,
    DecryptError,
    ExitCode,
    FormatError,
    SecretkitError,
)

#: bound of the per-provider cache of decrypted DEK sources (seeds / DEKs)
DEK_CACHE_SIZE = 1000
SEED_SIZE = 32
NO_MATCHING_PREFIX = "no matching prefix found"

RNG = Callable[[int], bytes]
KMSFactory = Callable[[KMSProvider], KMSService]


@dataclass(frozen=True)
class ReadResult:
    """The outcome of reading one stored value through the chain."""

    plaintext: bytes = field(repr=False)
    stale: bool
    provider: ValueProvider
    provider_name: str | None
    key_name: str | None
    key_id: str | None


class _Attempt(Exception):
    """One provider could not read the value; ``reason`` holds no secret material.

    ``code`` is what the failure proves: DATA_AT_RISK when the provider's key does
    not open the value, UNAVAILABLE (or USAGE) when the KMS service could not be
    asked, so nothing is known about the value.
    """

    def __init__(self, reason: str, code: ExitCode = ExitCode.DATA_AT_RISK) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def _dek_attempt(exc: SecretkitError) -> _Attempt:
    """A failed DEK unwrap: the backend refusing the ciphertext proves the key is gone."""
    if isinstance(exc, DecryptError | FormatError | BackendInvalidRequest):
        return _Attempt(_dek_failure(exc))
    return _Attempt(_dek_failure(exc), exc.exit_code)


@dataclass(frozen=True)
class HeaderReader:
    """Reads every value that shares one header the way the chain reads it.

    Built by :meth:`ResourceTransformer.reader_for_header` for a header of
    :mod:`secretkit.core.formats.header`: ``read(value, aad)`` runs the provider and key
    the chain would try first for *any* value with that header, so when it succeeds
    the chain would have returned the same plaintext with the verdict ``stale``. When
    it raises, a later provider might still read the value: callers then ask
    :meth:`ResourceTransformer.read` for the verdict and its error.
    """

    read: Callable[[bytes, bytes], bytes] = field(repr=False)
    stale: bool


class _Pass:
    """A link refuses every value of a header without trying a key (the chain goes on)."""


#: returned by a link's ``header_reader`` when it refuses the header outright
_PASS: Final = _Pass()
#: what a link's ``header_reader`` returns: a reader and its stale verdict, a refusal,
#: or None when the header does not decide what the link would do
_HeaderAnswer = tuple[Callable[[bytes, bytes], bytes], bool] | _Pass | None


# -- providers ------------------------------------------------------------------------


class _Identity:
    prefix = b""
    label = "identity"

    def read(self, data: bytes, aad: bytes) -> ReadResult:
        if data.startswith(ENCRYPTED_PREFIX):
            # upstream: "identity transformer tried to read encrypted data", not recorded
            raise _Attempt("identity transformer tried to read encrypted data")
        return ReadResult(data, False, ValueProvider.IDENTITY, "identity", None, None)

    def write(self, plaintext: bytes, aad: bytes) -> bytes:
        return plaintext

    def header_reader(self, value: bytes, header: bytes) -> _HeaderAnswer:
        if header.startswith(ENCRYPTED_PREFIX):
            return _PASS
        return _identity_read, False


def _identity_read(value: bytes, aad: bytes) -> bytes:
    return value


_LOCAL_KINDS = {
    ProviderType.AESCBC: ValueProvider.AESCBC,
    ProviderType.AESGCM: ValueProvider.AESGCM,
    ProviderType.SECRETBOX: ValueProvider.SECRETBOX,
}
_LOCAL_PREFIXES = {
    ProviderType.AESCBC: AESCBC_PREFIX,
    ProviderType.AESGCM: AESGCM_PREFIX,
    ProviderType.SECRETBOX: SECRETBOX_PREFIX,
}
_LOCAL_ERRORS = {
    ProviderType.AESCBC: "no matching key was found for the provided AES transformer",
    ProviderType.AESGCM: "no matching key was found for the provided AES transformer",
    ProviderType.SECRETBOX: "no matching key was found for the provided Secretbox transformer",
}


class _LocalKeys:
    """aescbc / aesgcm / secretbox: a nested prefix chain over ``<keyname>:``."""

    def __init__(self, provider: LocalKeyProvider, rng: RNG) -> None:
        self._type = provider.type
        self._kind = _LOCAL_KINDS[provider.type]
        self._keys = provider.keys
        self._rng = rng
        self.prefix = _LOCAL_PREFIXES[provider.type]
        self.label = provider.type.value

    def _decrypt(self, key: Key, data: bytes, aad: bytes) -> bytes:
        if self._type is ProviderType.AESCBC:
            return aescbc_decrypt(key.secret, data)
        if self._type is ProviderType.AESGCM:
            return aesgcm_decrypt(key.secret, data, aad)
        return secretbox_decrypt(key.secret, data)

    def read(self, data: bytes, aad: bytes) -> ReadResult:
        reasons = []
        names = matching_key_names(data, [k.name for k in self._keys])
        for index, key in enumerate(self._keys):
            if key.name not in names:
                continue
            body = data[len(key.name.encode()) + 1 :]  # bytes: names may be non-ASCII
            try:
                plaintext = self._decrypt(key, body, aad)
            except (DecryptError, FormatError) as exc:
                reasons.append(f"key {key.name!r}: {exc.what}")
                continue
            return ReadResult(plaintext, index != 0, self._kind, self.label, key.name, None)
        if reasons:
            raise _Attempt("; ".join(reasons))
        raise _Attempt(_LOCAL_ERRORS[self._type])

    def header_reader(self, value: bytes, header: bytes) -> _HeaderAnswer:
        # header: prefix ‖ name ‖ ":" (formats.header); the name holds no ':'
        name = header[len(self.prefix) : -1]
        configured = [k.name.encode() for k in self._keys]
        if not header_decides_key(name, configured):
            return None
        start = len(header)
        for index, key in enumerate(self._keys):
            if configured[index] == name:

                def read(value: bytes, aad: bytes, key: Key = key) -> bytes:
                    return self._decrypt(key, value[start:], aad)

                return read, index != 0
        return _PASS  # no key of this name: read() refuses it the same way

    def write(self, plaintext: bytes, aad: bytes) -> bytes:
        key = self._keys[0]
        prefix = key.name.encode() + b":"
        if self._type is ProviderType.AESCBC:
            return prefix + aescbc_encrypt(key.secret, plaintext, iv=self._rng(16))
        if self._type is ProviderType.AESGCM:
            return prefix + aesgcm_encrypt(key.secret, plaintext, aad, nonce=self._rng(12))
        return prefix + secretbox_encrypt(key.secret, plaintext, nonce=self._rng(24))


def _dek_failure(exc: SecretkitError) -> str:
    # the plugin's hint (e.g. "pass --backends") is the actionable part; it holds no secrets
    hint = f" (hint: {exc.hint})" if exc.hint else ""
    return f"failed to decrypt DEK, error: {exc.what}{hint}"


class _DEKCache:
    """A bounded LRU of decrypted DEK sources, keyed by everything Decrypt received."""

    def __init__(self, size: int = DEK_CACHE_SIZE) -> None:
        self._size = size
        self._items: OrderedDict[tuple[object, ...], bytes] = OrderedDict()

    @staticmethod
    def key(obj: EncryptedObject) -> tuple[object, ...]:
        return (
            int(obj.encrypted_dek_source_type),
            obj.encrypted_dek_source,
            obj.key_id,
            tuple(sorted(obj.annotations.items())),
        )

    def get(self, key: tuple[object, ...]) -> bytes | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: tuple[object, ...], value: bytes) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class _WriteState:
    """The current kms v2 write seed and what Encrypt returned for it."""

    seed: bytes = field(repr=False)
    key_id: str
    encrypted_dek_source: bytes = field(repr=False)
    annotations: Mapping[str, bytes]


class _KMSPlugin:
    """Everything shared by one kms provider name: the service, the caches, the seed."""

    def __init__(self, provider: KMSProvider, factory: KMSFactory, rng: RNG) -> None:
        self.provider = provider
        self._factory = factory
        self._rng = rng
        self._service: KMSService | None = None
        self._lock = threading.Lock()
        # one Status+Encrypt at a time, so concurrent first writes share one seed
        self._refresh_lock = threading.Lock()
        self.cache = _DEKCache()
        self.current_key_id: str | None = None
        self.write_state: _WriteState | None = None
        self.encrypt_calls = 0

    def _uid(self) -> str:
        return self._rng(16).hex()

    def service(self) -> KMSService:
        if self._service is None:
            try:
                self._service = self._factory(self.provider)
            except SecretkitError:
                raise
            except Exception as exc:
                # no chaining: an SDK message may quote request data (see backends.interface)
                raise BackendError(
                    f"cannot set up kms provider {self.provider.name!r} ({type(exc).__name__})"
                ) from None
        return self._service

    def dek_source(self, obj: EncryptedObject) -> bytes:
        key = _DEKCache.key(obj)
        with self._lock:
            cached = self.cache.get(key)
        if cached is not None:
            return cached
        plain = self.service().decrypt(
            obj.encrypted_dek_source, self._uid(), obj.key_id, dict(obj.annotations)
        )
        with self._lock:
            self.cache.put(key, plain)
        return plain

    def poll_status(self) -> str:
        """Call Status; remember and return the current key_id (reads need nothing more)."""
        status = self.service().status()
        if not status.healthy:
            raise BackendError(
                f"kms provider {self.provider.name!r} is not healthy",
                hint="check the plugin: its Status healthz is not 'ok'",
            )
        if not status.key_id:
            raise BackendError(f"kms provider {self.provider.name!r} reported an empty key_id")
        with self._lock:
            self.current_key_id = status.key_id
        return status.key_id

    def ensure_write_state(self) -> _WriteState:
        """The current write state, creating it (Status + one Encrypt) on first use."""
        with self._refresh_lock:
            if self.write_state is None:
                self._refresh_locked()
        state = self.write_state
        if state is None:  # pragma: no cover - _refresh_locked either sets it or raises
            raise BackendError(f"kms provider {self.provider.name!r} has no write key")
        return state

    def refresh(self) -> None:
        """Poll Status; draw and wrap a new seed when the key_id changed (v2 only)."""
        with self._refresh_lock:
            self._refresh_locked()

    def _refresh_locked(self) -> None:
        key_id = self.poll_status()
        with self._lock:
            state = self.write_state
            if state is not None and state.key_id == key_id:
                return
        seed = self._rng(SEED_SIZE)
        result = self.service().encrypt(seed, self._uid())
        self.encrypt_calls += 1
        if result.key_id != key_id:
            raise BackendError(
                f"kms provider {self.provider.name!r} encrypted with a key_id other than the "
                "one its Status reports",
                hint="the plugin is rotating; retry once Status and Encrypt agree",
            )
        probe = EncryptedObject(
            encrypted_data=b"\0",
            key_id=result.key_id,
            encrypted_dek_source=result.ciphertext,
            annotations=dict(result.annotations),
            encrypted_dek_source_type=DEKSourceType.HKDF_SHA256_XNONCE_AES_GCM_SEED,
        )
        validate_encrypted_object(probe)
        with self._lock:
            self.write_state = _WriteState(
                seed, result.key_id, result.ciphertext, dict(result.annotations)
            )
            # the seed we just wrapped decrypts our own writes without a round trip
            self.cache.put(_DEKCache.key(probe), seed)


class _KMSv2:
    def __init__(self, plugin: _KMSPlugin, rng: RNG) -> None:
        self._plugin = plugin
        self._rng = rng
        self.prefix = prefix_for(ValueProvider.KMS_V2.value, plugin.provider.name)
        self.label = f"kms v2 {plugin.provider.name!r}"

    def read(self, data: bytes, aad: bytes) -> ReadResult:
        name = self._plugin.provider.name
        try:
            obj = decode_encrypted_object(data)
        except (FormatError, DecryptError) as exc:
            raise _Attempt(exc.what) from None
        try:
            source = self._plugin.dek_source(obj)
        except SecretkitError as exc:
            raise _dek_attempt(exc) from None
        try:
            plaintext = kmsv2_decrypt_data(obj, source, aad)
        except (FormatError, DecryptError) as exc:
            raise _Attempt(exc.what) from None
        stale = self._stale(obj)
        return ReadResult(plaintext, stale, ValueProvider.KMS_V2, name, None, obj.key_id)

    def _stale(self, obj: EncryptedObject) -> bool:
        current = self._plugin.current_key_id
        if current is None:
            try:
                current = self._plugin.poll_status()
            except SecretkitError:
                current = None  # unknown current key: a rewrite is the safe verdict
        return (
            current is None
            or obj.key_id != current
            or obj.encrypted_dek_source_type != DEKSourceType.HKDF_SHA256_XNONCE_AES_GCM_SEED
        )

    def header_reader(self, value: bytes, header: bytes) -> _HeaderAnswer:
        offset = len(self.prefix)
        try:
            obj = decode_encrypted_object(value[offset:])
        except (FormatError, DecryptError):
            return _PASS  # the header's metadata does not parse: read() refuses it too
        if repeats_encrypted_data(header[offset:]):
            return None  # read() decrypts the last encryptedData, not the first
        try:
            source = self._plugin.dek_source(obj)
        except SecretkitError:
            return None  # perhaps transient: leave the value to read() and its error
        stale = self._stale(obj)
        if self._plugin.current_key_id is None:
            return None  # Status failed: read() asks again for every value
        source_type = obj.encrypted_dek_source_type

        def read(value: bytes, aad: bytes) -> bytes:
            span = encrypted_data_span(value, offset)
            if span is None:  # pragma: no cover - the header guarantees the span
                raise FormatError("kms v2 encryptedData is missing")
            return kmsv2_open(source_type, source, memoryview(value)[span[0] : span[1]], aad)

        return read, stale

    def write(self, plaintext: bytes, aad: bytes) -> bytes:
        state = self._plugin.ensure_write_state()
        obj = EncryptedObject(
            encrypted_data=kmsv2_encrypt_data(
                state.seed, plaintext, aad, info=self._rng(32), nonce=self._rng(12)
            ),
            key_id=state.key_id,
            encrypted_dek_source=state.encrypted_dek_source,
            annotations=dict(state.annotations),
            encrypted_dek_source_type=DEKSourceType.HKDF_SHA256_XNONCE_AES_GCM_SEED,
        )
        return encode_encrypted_object(obj)


class _KMSv1:
    def __init__(self, plugin: _KMSPlugin) -> None:
        self._plugin = plugin
        self.prefix = prefix_for(ValueProvider.KMS_V1.value, plugin.provider.name)
        self.label = f"kms v1 {plugin.provider.name!r}"

    def read(self, data: bytes, aad: bytes) -> ReadResult:
        try:
            encrypted_dek, payload = decode_kmsv1(data)
        except (FormatError, DecryptError) as exc:
            raise _Attempt(exc.what) from None
        obj = EncryptedObject(encrypted_data=b"", key_id="", encrypted_dek_source=encrypted_dek)
        try:
            dek = self._plugin.dek_source(obj)
        except SecretkitError as exc:
            raise _dek_attempt(exc) from None
        try:
            # upstream's union: AES-GCM, else the pre-1.25 AES-CBC layout (stale)
            plaintext, legacy_cbc = kmsv1_open(dek, payload, aad)
        except (FormatError, DecryptError) as exc:
            raise _Attempt(exc.what) from None
        name = self._plugin.provider.name
        return ReadResult(plaintext, legacy_cbc, ValueProvider.KMS_V1, name, None, None)

    def header_reader(self, value: bytes, header: bytes) -> _HeaderAnswer:
        return None  # kms v1 values have no header: each carries its own DEK

    def write(self, plaintext: bytes, aad: bytes) -> bytes:
        raise ConfigError(
            f"kms v1 provider {self._plugin.provider.name!r} cannot be used for writing",
            hint="KMS v1 is deprecated: put a kms v2 (or aesgcm/secretbox) provider first",
        )


_Link = _Identity | _LocalKeys | _KMSv1 | _KMSv2


# -- the chain ------------------------------------------------------------------------


class ResourceTransformer:
    """The ordered provider chain of one resource."""

    def __init__(self, links: tuple[_Link, ...], resource: str) -> None:
        self._links = links
        self.resource = resource

    @property
    def write_provider(self) -> str:
        """A label for the provider that writes (for messages; no secrets)."""
        return self._links[0].label

    def read(self, value: bytes, etcd_key: str) -> ReadResult:
        """Decrypt ``value`` stored under ``etcd_key``; :class:`DecryptError` names every try."""
        aad = _aad(etcd_key)
        reasons: list[str] = []
        codes: set[ExitCode] = set()
        for index, link in enumerate(self._links):
            if not value.startswith(link.prefix):
                continue
            try:
                result = link.read(value[len(link.prefix) :], aad)
            except _Attempt as attempt:
                if link.prefix:  # identity's refusal is not an error upstream
                    reasons.append(f"{link.label}: {attempt.reason}")
                    codes.add(attempt.code)
                continue
            if index != 0 and not result.stale:
                result = _with_stale(result)
            return result
        if reasons:
            asked = not codes & {ExitCode.UNAVAILABLE, ExitCode.USAGE}
            error = DecryptError(
                "no provider could decrypt the value: " + " | ".join(reasons),
                where=etcd_key,
                hint="the matching providers' keys do not open it: wrong key, tampered value, "
                "or a value copied from another etcd key (aesgcm and kms v2 bind the key)"
                if asked
                else "a KMS service could not be asked (see the reasons): nothing is known "
                "about the value yet; fix that and run again",
            )
            # a KMS service that could not be asked proves nothing about the value
            for code in (ExitCode.UNAVAILABLE, ExitCode.USAGE):
                if code in codes:
                    error.exit_code = code
                    break
            raise error
        tried = ", ".join(link.label for link in self._links)
        raise DecryptError(
            f"{NO_MATCHING_PREFIX} (resource {self.resource!r}; tried: {tried})",
            where=etcd_key,
            hint="the value was written by a provider that is not configured for this "
            "resource; add that provider (with its key) to the resource's rule to read it",
        )

    def reader_for_header(self, value: bytes, header: bytes) -> HeaderReader | None:
        """A reader for every value whose header (``formats.value_header``) is ``header``.

        ``value`` is one such value (kms v2 metadata is decoded from it, and its
        wrapped DEK source is decrypted once, through the cache). None when no
        provider would read such values, or when the header does not decide which
        provider and key the chain tries first (a local key name that is a prefix of
        another configured name, a KMS call that failed): use :meth:`read` then.
        """
        for index, link in enumerate(self._links):
            if not value.startswith(link.prefix):
                continue
            answer = link.header_reader(value, header)
            if answer is _PASS:
                continue
            if answer is None or isinstance(answer, _Pass):
                return None
            read, stale = answer
            return HeaderReader(read, stale or index != 0)
        return None

    def write(self, plaintext: bytes, etcd_key: str) -> bytes:
        """Encrypt ``plaintext`` for ``etcd_key`` with provider #0 (key #0)."""
        link = self._links[0]
        return link.prefix + link.write(plaintext, _aad(etcd_key))


def _aad(etcd_key: str) -> bytes:
    """The authenticated data of ``etcd_key``: the stored key's bytes, as upstream uses.

    Keys that are not valid UTF-8 arrive decoded with ``surrogateescape`` and get
    their original bytes back here.
    """
    return etcd_key.encode("utf-8", "surrogateescape")


def _with_stale(result: ReadResult) -> ReadResult:
    return ReadResult(
        result.plaintext,
        True,
        result.provider,
        result.provider_name,
        result.key_name,
        result.key_id,
    )


class TransformerSet:
    """Transformers for every resource of one EncryptionConfiguration."""

    def __init__(self, config: EncryptionConfig, kms: KMSFactory, rng: RNG) -> None:
        self._config = config
        self._rng = rng
        self._plugins: dict[str, _KMSPlugin] = {}
        self._kms_factory = kms
        self._cache: dict[tuple[str, str], ResourceTransformer] = {}
        self._lock = threading.Lock()

    def _plugin(self, provider: KMSProvider) -> _KMSPlugin:
        plugin = self._plugins.get(provider.name)
        if plugin is None:
            plugin = _KMSPlugin(provider, self._kms_factory, self._rng)
            self._plugins[provider.name] = plugin
        return plugin

    def _link(self, provider: Provider) -> _Link:
        if isinstance(provider, IdentityProvider):
            return _Identity()
        if isinstance(provider, LocalKeyProvider):
            return _LocalKeys(provider, self._rng)
        plugin = self._plugin(provider)
        return _KMSv2(plugin, self._rng) if provider.api_version == "v2" else _KMSv1(plugin)

    def for_resource(self, resource: str, group: str = "") -> ResourceTransformer:
        """The chain for ``resource`` in ``group`` (``""`` = core)."""
        with self._lock:
            cached = self._cache.get((resource, group))
            if cached is None:
                links = tuple(self._link(p) for p in providers_for(self._config, resource, group))
                name = f"{resource}.{group}" if group else resource
                cached = ResourceTransformer(links, name)
                self._cache[(resource, group)] = cached
            return cached

    def for_etcd_key(self, etcd_key: str, prefix: str = "/registry") -> ResourceTransformer:
        """The chain for the resource stored under ``etcd_key``."""
        return self.for_resource(*resource_for_etcd_key(etcd_key, prefix))

    def refresh_kms(self) -> None:
        """Status on every kms v2 provider; a new seed and one Encrypt when key_id changed."""
        for rule in self._config.rules:
            for provider in rule.providers:
                if isinstance(provider, KMSProvider) and provider.api_version == "v2":
                    with self._lock:
                        plugin = self._plugin(provider)
                    plugin.refresh()


def build_transformers(
    config: EncryptionConfig,
    kms: KMSFactory,
    *,
    rng: RNG = os.urandom,
) -> TransformerSet:
    """Build the transformer set of ``config``; kms services are created on first use."""
    return TransformerSet(config, kms, rng)
