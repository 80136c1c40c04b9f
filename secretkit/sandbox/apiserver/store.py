"""Object storage in etcd, byte-for-byte the way kube-apiserver does it.

Key ``/registry/<resource>/<namespace>/<name>``; value
``transformer.write(b"k8s\\x00" + runtime.Unknown{v1, Kind, raw=protobuf}, key)``.
The stored object carries no ``resourceVersion``: it is the etcd ``mod_revision``,
filled in on read. Writes are compare-and-swap on ``mod_revision``.
"""

from __future__ import annotations

import builtins
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from secretkit.errors import SecretkitError
from secretkit.etcd import EtcdClient, EtcdCompactedError, KeyValue
from secretkit.formats import decode_unknown, encode_unknown
from secretkit.sandbox.apiserver import codec
from secretkit.sandbox.apiserver.encryption import EncryptionState
from secretkit.sandbox.apiserver.pagination import decode_continue, encode_continue
from secretkit.sandbox.apiserver.resources import (
    ResourceType,
    check_update,
    fill_system_fields,
)
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

#: how many times an unconditional update retries a lost compare-and-swap
_UPDATE_RETRIES = 5


@dataclass(frozen=True)
class ListResult:
    """One list page: the objects, the list's resourceVersion and the next token."""

    items: builtins.list[dict[str, Any]]
    resource_version: int
    continue_token: str | None


@dataclass(frozen=True)
class _Stored:
    obj: dict[str, Any] = field(repr=False)
    plaintext: bytes = field(repr=False)
    stale: bool
    mod_revision: int


class ObjectStore:
    """CRUD and paged lists of Secrets/ConfigMaps over one etcd client."""

    def __init__(self, etcd: EtcdClient, encryption: EncryptionState, prefix: str = "/registry"):
        self._etcd = etcd
        self._encryption = encryption
        self._prefix = prefix.rstrip("/")

    # -- keys ----------------------------------------------------------------------------
    def key(self, rtype: ResourceType, namespace: str, name: str) -> str:
        """The etcd key of one object."""
        return f"{self._prefix}/{rtype.plural}/{namespace}/{name}"

    def _resource_prefix(self, rtype: ResourceType) -> str:
        return f"{self._prefix}/{rtype.plural}/"

    # -- encode / decode -----------------------------------------------------------------
    def _encode(self, rtype: ResourceType, obj: dict[str, Any]) -> bytes:
        return encode_unknown("v1", rtype.kind, codec.encode_object(rtype, obj))

    def _decode(self, rtype: ResourceType, kv: KeyValue) -> _Stored:
        key = kv.key.decode()
        try:
            result = self._encryption.transformer(rtype.plural).read(kv.value, key)
            unknown = decode_unknown(result.plaintext)
            obj = codec.decode_object(rtype, unknown.raw)
        except SecretkitError as exc:
            # same shape as upstream: "unable to transform key ..." (no value bytes)
            raise internal_error(f'unable to transform key "{key}": {exc.what}') from exc
        obj["metadata"]["resourceVersion"] = str(kv.mod_revision)
        return _Stored(obj, result.plaintext, result.stale, kv.mod_revision)

    def _write_value(self, rtype: ResourceType, plaintext: bytes, key: str) -> bytes:
        self._encryption.check_writable(rtype.plural)
        try:
            value: bytes = self._encryption.transformer(rtype.plural).write(plaintext, key)
        except SecretkitError as exc:
            raise internal_error(f'unable to transform key "{key}": {exc.what}') from exc
        return value

    @staticmethod
    def _call(fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return fn(*args, **kwargs)
        except SecretkitError as exc:
            raise internal_error(f"etcd: {exc.what}") from exc

    # -- CRUD ----------------------------------------------------------------------------
    def get(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        """Read one object (404 when absent)."""
        kv = self._call(self._etcd.get, self.key(rtype, namespace, name).encode())
        if kv is None:
            raise not_found(rtype.plural, name)
        return self._decode(rtype, kv).obj

    def create(self, rtype: ResourceType, obj: dict[str, Any], *, dry_run: bool = False
               ) -> dict[str, Any]:
        """Store a new object (409 AlreadyExists when the key exists)."""
        meta = obj["metadata"]
        fill_system_fields(obj, str(uuid.uuid4()))
        key = self.key(rtype, meta["namespace"], meta["name"])
        value = self._write_value(rtype, self._encode(rtype, obj), key)
        if dry_run:
            return obj
        revision = self._call(self._etcd.put_if, key.encode(), value, mod_revision=0)
        if not revision:
            raise already_exists(rtype.plural, meta["name"])
        meta["resourceVersion"] = str(revision)
        return obj

    def update(
        self,
        rtype: ResourceType,
        obj: dict[str, Any],
        *,
        precondition: str | None,
        dry_run: bool = False,
        mutate: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Replace an object; ``precondition`` is the client's resourceVersion (or None).

        An update that leaves the stored plaintext unchanged is skipped (no new
        resourceVersion) unless the stored value is stale, in which case it is
        rewritten with the current write provider: that is how a no-op replace
        re-encrypts. ``mutate`` (for patches) builds the new object from the old one.
        """
        meta = obj["metadata"]
        key = self.key(rtype, meta["namespace"], meta["name"])
        for _attempt in range(_UPDATE_RETRIES):
            kv = self._call(self._etcd.get, key.encode())
            if kv is None:
                raise not_found(rtype.plural, meta["name"])
            current = self._decode(rtype, kv)
            if precondition and precondition != str(kv.mod_revision):
                raise conflict(rtype.plural, meta["name"])
            new = mutate(current.obj) if mutate is not None else obj
            new["metadata"].pop("resourceVersion", None)
            check_update(rtype, current.obj, new)
            plaintext = self._encode(rtype, new)
            if plaintext == current.plaintext and not current.stale:
                return current.obj
            value = self._write_value(rtype, plaintext, key)
            if dry_run:
                new["metadata"]["resourceVersion"] = str(kv.mod_revision)
                return new
            revision = self._call(
                self._etcd.put_if, key.encode(), value, mod_revision=kv.mod_revision
            )
            if revision:
                new["metadata"]["resourceVersion"] = str(revision)
                return new
            if precondition:
                raise conflict(rtype.plural, meta["name"])
        raise conflict(rtype.plural, meta["name"])

    def delete(
        self, rtype: ResourceType, namespace: str, name: str, *, precondition: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Delete one object; returns it (404 when absent, 409 on a failed precondition)."""
        key = self.key(rtype, namespace, name)
        kv = self._call(self._etcd.get, key.encode())
        if kv is None:
            raise not_found(rtype.plural, name)
        if precondition and precondition != str(kv.mod_revision):
            raise conflict(rtype.plural, name)
        obj = self._decode(rtype, kv).obj
        if dry_run:
            return obj
        if not self._call(self._etcd.delete, key.encode(), mod_revision=kv.mod_revision):
            raise conflict(rtype.plural, name)
        return obj

    # -- lists ---------------------------------------------------------------------------
    def list(
        self,
        rtype: ResourceType,
        namespace: str | None,
        *,
        limit: int = 0,
        continue_token: str | None = None,
        accept: Callable[[dict[str, Any]], bool] | None = None,
    ) -> ListResult:
        """List objects, all namespaces when ``namespace`` is None.

        With ``limit`` the list is paged; every page of one list reads the etcd
        revision of the first page (410 Expired once that revision is compacted).
        """
        base = self._resource_prefix(rtype)
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
        items: builtins.list[dict[str, Any]] = []
        last_key: str | None = None
        more = False
        try:
            for kv in self._scan(prefix, start, revision, limit):
                if limit and len(items) >= limit:
                    more = True
                    break
                stored = self._decode(rtype, kv)
                last_key = kv.key.decode()
                if accept is None or accept(stored.obj):
                    items.append(stored.obj)
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
                ) -> builtins.list[dict[str, Any]]:
        """Every object of ``rtype`` at one etcd revision (410 once it is compacted)."""
        prefix = self._resource_prefix(rtype) + (f"{namespace}/" if namespace else "")
        try:
            return [self._decode(rtype, kv).obj for kv in self._scan(prefix, None, revision, 0)]
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

    def namespaces(self, plurals: tuple[ResourceType, ...]) -> builtins.list[str]:
        """Namespaces that hold at least one stored object, plus ``default``."""
        seen = {"default"}
        for rtype in plurals:
            base = self._resource_prefix(rtype)
            for batch in self._etcd.range_pages(base.encode(), keys_only=True):
                for kv in batch:
                    seen.add(kv.key.decode()[len(base):].split("/", 1)[0])
        return sorted(seen)
