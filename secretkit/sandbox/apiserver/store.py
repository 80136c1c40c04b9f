"""Object storage in etcd, byte-for-byte the way kube-apiserver does it.

Key ``<prefix>/<path>/<namespace>/<name>``, the path from kube-apiserver's layout
(:mod:`secretkit.core.layout`, e.g. ``secrets``, ``leases``, ``controllerrevisions``:
no group for built-in kinds); value
``transformer.write(b"k8s\\x00" + runtime.Unknown{apiVersion, kind, raw=protobuf}, key)``.
The stored object carries no ``resourceVersion``: it is the etcd ``mod_revision``,
filled in on read. Writes are compare-and-swap on ``mod_revision``.

Updates follow ``GuaranteedUpdate`` of ``k8s.io/apiserver/pkg/storage/etcd3``: the new
object is encoded and compared with the stored plaintext; an unchanged object is not
written unless the stored value is *stale* (not written by the current write
provider/key), in which case it is rewritten as it is. That is how a no-op update
re-encrypts. A lost compare-and-swap is retried on the newer object, unless the
client sent a ``resourceVersion`` precondition (409). Like upstream's, the first attempt
starts from the value last seen (:mod:`.seen`, the part the watch cache plays there)
and reads etcd only when that guess fails.
"""

from __future__ import annotations

import builtins
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from secretkit.backends._coalesce import Coalescer
from secretkit.core.formats.model import ValueProvider
from secretkit.core.formats.prefixes import KMS_V2_PREFIX
from secretkit.core.layout import Layout
from secretkit.errors import SecretkitError
from secretkit.etcd import EtcdClient, EtcdCompactedError, KeyValue
from secretkit.etcd.client import MAX_TXN_OPS
from secretkit.etcd.model import KeyValueRecord
from secretkit.sandbox.apiserver import codec
from secretkit.sandbox.apiserver.encryption import EncryptionState
from secretkit.sandbox.apiserver.pagination import decode_continue, encode_continue
from secretkit.sandbox.apiserver.resources import (
    ResourceType,
    check_update,
    fill_system_fields,
)
from secretkit.sandbox.apiserver.seen import SeenValues
from secretkit.sandbox.apiserver.status import (
    ApiError,
    already_exists,
    conflict,
    gone_expired,
    internal_error,
    not_found,
)

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")

#: how many times an update retries a lost compare-and-swap on the newer object
_UPDATE_RETRIES = 5
#: a batch of writes stays well below etcd's default --max-request-bytes (1.5 MiB)
_MAX_BATCH_BYTES = 1024 * 1024
#: builds the new object from the stored one (None: the object stays as it is)
Mutation = Callable[[dict[str, Any]], dict[str, Any]] | None


@dataclass(slots=True)
class Stored:
    """One stored object: its plaintext, etcd revision and whether the value is stale.

    The JSON form is decoded on first use (:meth:`object`), or only its metadata
    (:meth:`metadata`), so answers that need less decode less.
    """

    rtype: ResourceType
    plaintext: bytes = field(repr=False)
    stale: bool
    revision: int
    _obj: dict[str, Any] | None = field(default=None, repr=False)

    def object(self) -> dict[str, Any]:
        """The object (JSON form) with its ``resourceVersion``."""
        if self._obj is None:
            try:
                obj = codec.decode_stored(self.rtype, self.plaintext)
            except SecretkitError as exc:
                raise internal_error(f"unable to decode a stored {self.rtype.kind}: "
                                     f"{exc.what}") from exc
            obj["metadata"]["resourceVersion"] = str(self.revision)
            self._obj = obj
        return self._obj

    def metadata_raw(self) -> bytes:
        """The protobuf ``ObjectMeta`` of the object, with its ``resourceVersion``."""
        try:
            return codec.stored_metadata_raw(self.plaintext, str(self.revision))
        except SecretkitError as exc:
            raise internal_error(f"unable to decode a stored {self.rtype.kind}: "
                                 f"{exc.what}") from exc

    def metadata(self) -> dict[str, Any]:
        """Only the object's metadata, with its ``resourceVersion``."""
        if self._obj is not None:
            return dict(self._obj["metadata"])
        try:
            meta = codec.decode_stored_metadata(self.plaintext)
        except SecretkitError as exc:
            raise internal_error(f"unable to decode a stored {self.rtype.kind}: "
                                 f"{exc.what}") from exc
        meta["resourceVersion"] = str(self.revision)
        return meta


@dataclass(frozen=True)
class ListResult:
    """One list page: the objects, the list's resourceVersion and the next token."""

    items: builtins.list[Stored]
    resource_version: int
    continue_token: str | None
    remaining: int | None = None


class ObjectStore:
    """CRUD and paged lists of the stored kinds over one etcd client."""

    def __init__(self, etcd: EtcdClient, encryption: EncryptionState, prefix: str = "/registry"):
        self._etcd = etcd
        self._encryption = encryption
        # Concurrent requests go to etcd together: a Python gRPC call costs ~0.2 ms of
        # CPU, a key in a batch ~0.01 ms, and the stand-in is one Python process (a Go
        # kube-apiserver pays ~0.02 ms per call). Reads share one read-only Txn; writes
        # share one Txn in which each key keeps its own compare-and-swap. The one
        # visible difference: objects written together share a resourceVersion.
        self._reads: Coalescer[bytes, KeyValue | None] = Coalescer(
            etcd.get, lambda keys: etcd.get_many([(key, 0) for key in keys]),
            max_items=MAX_TXN_OPS, max_inflight=1)
        self._writes: Coalescer[tuple[bytes, bytes, int], int] = Coalescer(
            lambda item: etcd.put_if(item[0], item[1], mod_revision=item[2]),
            self._put_batch, max_items=MAX_TXN_OPS, max_inflight=1)
        self.layout = Layout(prefix)
        self._prefixes: dict[tuple[str, str], str] = {}
        self._seen = SeenValues()

    # -- keys ----------------------------------------------------------------------------
    def resource_prefix(self, rtype: ResourceType) -> str:
        """The etcd prefix of every object of ``rtype`` (ends with ``/``)."""
        cached = self._prefixes.get((rtype.group, rtype.plural))
        if cached is None:
            known = self.layout.find(rtype.group, rtype.plural)
            if known is None:  # every stored kind is in the table; a test keeps it so
                raise AssertionError(f"{rtype.qualified} is not in the etcd layout table")
            cached = f"{self.layout.root}{known.path}/"
            self._prefixes[(rtype.group, rtype.plural)] = cached
        return cached

    def key(self, rtype: ResourceType, namespace: str | None, name: str) -> str:
        """The etcd key of one object."""
        if namespace is None:
            return f"{self.resource_prefix(rtype)}{name}"
        return f"{self.resource_prefix(rtype)}{namespace}/{name}"

    # -- encode / decode -----------------------------------------------------------------
    def _read(self, rtype: ResourceType, kv: KeyValue, *, from_storage: bool = True) -> Stored:
        """Decrypt and wrap ``kv``; ``from_storage`` False for a value last seen (the
        watch cache holds it decoded upstream: no read from storage to count)."""
        key = kv.key.decode()
        try:
            result = self._encryption.transformer(rtype.plural, rtype.group).read(kv.value, key)
        except SecretkitError as exc:
            # same shape as upstream: "unable to transform key ..." (no value bytes)
            raise internal_error(f'unable to transform key "{key}": {exc.what}') from exc
        if (from_storage and result.provider is ValueProvider.KMS_V2 and result.key_id
                and result.provider_name):
            self._encryption.record_kms_use(result.provider_name, result.key_id, kv.value,
                                            to_storage=False)
        return Stored(rtype, result.plaintext, result.stale, kv.mod_revision)

    def _write_value(self, rtype: ResourceType, plaintext: bytes, key: str) -> bytes:
        self._encryption.check_writable(rtype.plural, rtype.group)
        try:
            value: bytes = self._encryption.transformer(rtype.plural, rtype.group).write(
                plaintext, key)
        except SecretkitError as exc:
            raise internal_error(f'unable to transform key "{key}": {exc.what}') from exc
        if value.startswith(KMS_V2_PREFIX):
            self._encryption.record_written(value)
        return value

    def _put_batch(self, items: Sequence[tuple[bytes, bytes, int]]) -> list[int]:
        """One Txn for ``items`` when it fits; on any conflict, each on its own."""
        keys = {key for key, _, _ in items}
        size = sum(len(key) + len(value) for key, value, _ in items)
        if len(keys) == len(items) and size <= _MAX_BATCH_BYTES:
            revision = self._etcd.put_if_many(items)
            if revision:
                return [revision] * len(items)
        # a conflict (or a key twice): find out which, one compare-and-swap at a time
        return [self._etcd.put_if(key, value, mod_revision=rev) for key, value, rev in items]

    def _put_if(self, key: str, value: bytes, mod_revision: int) -> int:
        try:
            return self._writes.submit((key.encode(), value, mod_revision))
        except SecretkitError as exc:
            raise internal_error(f"etcd: {exc.what}") from exc

    def _get(self, key: str) -> KeyValue | None:
        try:
            kv = self._reads.submit(key.encode())
        except SecretkitError as exc:
            raise internal_error(f"etcd: {exc.what}") from exc
        if kv is None:
            self._seen.forget(key.encode())
        else:
            self._seen.note(kv)
        return kv

    @staticmethod
    def _call(fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return fn(*args, **kwargs)
        except SecretkitError as exc:
            raise internal_error(f"etcd: {exc.what}") from exc

    # -- CRUD ----------------------------------------------------------------------------
    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> Stored:
        """Read one object (404 when absent)."""
        kv = self._get(self.key(rtype, namespace, name))
        if kv is None:
            raise not_found(rtype.plural, name, rtype.group)
        return self._read(rtype, kv)

    def create(self, rtype: ResourceType, obj: dict[str, Any], *, dry_run: bool = False
               ) -> dict[str, Any]:
        """Store a new object (409 AlreadyExists when the key exists)."""
        meta = obj["metadata"]
        fill_system_fields(obj, str(uuid.uuid4()))
        key = self.key(rtype, meta.get("namespace"), meta["name"])
        value = self._write_value(rtype, codec.encode_stored(rtype, obj), key)
        if dry_run:
            return obj
        revision = self._put_if(key, value, 0)
        if not revision:
            raise already_exists(rtype.plural, meta["name"], rtype.group)
        self._seen.note(KeyValueRecord(key.encode(), value, revision, revision, 1))
        meta["resourceVersion"] = str(revision)
        return obj

    def update(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        mutate: Mutation,
        *,
        precondition: str | None = None,
        dry_run: bool = False,
    ) -> Stored:
        """Update one object inside a compare-and-swap loop (GuaranteedUpdate).

        ``mutate`` builds the new object from the current one (it may raise ApiError);
        None leaves it as it is, which rewrites only a stale value. ``precondition`` is
        the client's ``resourceVersion``: a mismatch is a 409, never a retry.
        """
        key = self.key(rtype, namespace, name)
        raw_key = key.encode()
        # the first attempt starts from the value last seen, unverified (see .seen)
        kv = None if dry_run else self._seen.get(raw_key)
        verified = kv is None
        if kv is None:
            kv = self._get(key)
        # one more try than the retries: the first may be spent on the guess
        for _attempt in range(_UPDATE_RETRIES + 1):
            if kv is None:
                raise not_found(rtype.plural, name, rtype.group)
            try:
                current = self._read(rtype, kv, from_storage=verified)
            except ApiError:
                if verified:
                    raise
                # the value last seen no longer decrypts (its key was removed since,
                # and etcd moved on): what counts is the object etcd holds now
                kv, verified = self._get(key), True
                continue
            if precondition and precondition != str(kv.mod_revision):
                if not verified:
                    kv, verified = self._get(key), True
                    continue
                raise conflict(rtype.plural, name, rtype.group)
            new_obj: dict[str, Any] | None = None
            plaintext = current.plaintext
            if mutate is not None:
                try:
                    new_obj = mutate(current.object())
                    new_obj["metadata"].pop("resourceVersion", None)
                    check_update(rtype, current.object(), new_obj)
                except ApiError:
                    if verified:
                        raise
                    # refused on a cached object: decide on the current one
                    kv, verified = self._get(key), True
                    continue
                plaintext = codec.encode_stored(rtype, new_obj)
            if plaintext == current.plaintext and not current.stale:
                if not verified:  # a no-op is never answered from a cached state
                    kv, verified = self._get(key), True
                    continue
                return current
            value = self._write_value(rtype, plaintext, key)
            if dry_run:
                preview = Stored(rtype, plaintext, False, kv.mod_revision)
                if new_obj is not None:
                    new_obj["metadata"]["resourceVersion"] = str(kv.mod_revision)
                    preview._obj = new_obj
                return preview
            revision = self._put_if(key, value, kv.mod_revision)
            if revision:
                self._seen.note(KeyValueRecord(raw_key, value, 0, revision, 0))
                written = Stored(rtype, plaintext, False, revision)
                if new_obj is not None:
                    new_obj["metadata"]["resourceVersion"] = str(revision)
                    written._obj = new_obj
                return written
            if precondition and verified:
                raise conflict(rtype.plural, name, rtype.group)
            kv, verified = self._get(key), True
        raise conflict(rtype.plural, name, rtype.group)

    def delete(
        self, rtype: ResourceType, namespace: str | None, name: str, *,
        precondition: str | None = None, dry_run: bool = False,
    ) -> Stored:
        """Delete one object; returns it (404 when absent, 409 on a failed precondition)."""
        key = self.key(rtype, namespace, name)
        kv = self._get(key)
        if kv is None:
            raise not_found(rtype.plural, name, rtype.group)
        if precondition and precondition != str(kv.mod_revision):
            raise conflict(rtype.plural, name, rtype.group)
        stored = self._read(rtype, kv)
        if dry_run:
            return stored
        if not self._call(self._etcd.delete, key.encode(), mod_revision=kv.mod_revision):
            raise conflict(rtype.plural, name, rtype.group)
        self._seen.forget(key.encode())
        return stored

    # -- lists ---------------------------------------------------------------------------
    def list(
        self,
        rtype: ResourceType,
        namespace: str | None,
        *,
        limit: int = 0,
        continue_token: str | None = None,
        accept: Callable[[Stored], bool] | None = None,
    ) -> ListResult:
        """List objects, all namespaces when ``namespace`` is None.

        With ``limit`` the list is paged; every page of one list reads the etcd
        revision of the first page (410 Expired once that revision is compacted).
        """
        base = self.resource_prefix(rtype)
        prefix = base + (f"{namespace}/" if namespace else "")
        start: str | None = None
        revision: int | None = None
        if continue_token:
            token = decode_continue(continue_token)
            revision, start = token.revision, base + token.start
            if not start.startswith(prefix):
                raise ApiError(400, "BadRequest", "continue key is not valid: it does not "
                               "belong to this list")
        if revision is None:
            revision = int(self._call(self._etcd.current_revision))
        items: builtins.list[Stored] = []
        last_key: str | None = None
        more = False
        try:
            for kv in self._scan(prefix, start, revision, limit):
                if limit and len(items) >= limit:
                    more = True
                    break
                stored = self._read(rtype, kv)
                self._seen.note(kv)
                last_key = kv.key.decode()
                if accept is None or accept(stored):
                    items.append(stored)
        except SecretkitError as exc:
            if isinstance(exc, EtcdCompactedError) or "compacted" in exc.what:
                raise gone_expired(
                    "The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter, or use "
                    "the continue token in this response to retrieve the remainder of the "
                    "results. Continuing with the provided token results in an inconsistent "
                    "list - objects that were created, modified, or deleted between the time "
                    "the first chunk was returned and now may show up in the list."
                ) from exc
            raise internal_error(f"etcd: {exc.what}") from exc
        token_out = None
        if more and last_key is not None:
            token_out = encode_continue(revision, last_key[len(base):])
        return ListResult(items, revision, token_out)

    def current_revision(self) -> int:
        """etcd's current revision (500 when etcd cannot be reached)."""
        return int(self._call(self._etcd.current_revision))

    def list_at(self, rtype: ResourceType, namespace: str | None, revision: int
                ) -> builtins.list[Stored]:
        """Every object of ``rtype`` at one etcd revision (410 once it is compacted)."""
        prefix = self.resource_prefix(rtype) + (f"{namespace}/" if namespace else "")
        try:
            return [self._read(rtype, kv) for kv in self._scan(prefix, None, revision, 0)]
        except SecretkitError as exc:
            if isinstance(exc, EtcdCompactedError) or "compacted" in exc.what:
                raise gone_expired(f"too old resource version: {revision}") from exc
            raise internal_error(f"etcd: {exc.what}") from exc

    def _scan(self, prefix: str, start: str | None, revision: int, limit: int
              ) -> Iterator[KeyValue]:
        page = max(min(limit + 1 if limit else 500, 1000), 1)
        first = start.encode() if start is not None else None
        for batch in self._etcd.range_pages(
            prefix.encode(), revision=revision, page_size=page, start=first
        ):
            yield from batch

    def namespaces(self, kinds: tuple[ResourceType, ...]) -> builtins.list[str]:
        """Namespaces that hold at least one stored object, plus ``default``."""
        seen = {"default"}
        for rtype in kinds:
            if not rtype.namespaced:
                continue
            base = self.resource_prefix(rtype)
            for batch in self._etcd.range_pages(base.encode(), keys_only=True):
                for kv in batch:
                    seen.add(kv.key.decode()[len(base):].split("/", 1)[0])
        return sorted(seen)
