"""Where a resource's objects live in etcd, and which object a key names."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field

from secretkit.core.encryption_config import EncryptionConfig, etcd_prefixes_for, providers_for
from secretkit.core.encryption_config.model import Provider
from secretkit.etcd.interface import EtcdReader
from secretkit.kube.discovery import ApiResource


def etcd_prefixes(resource: str, group: str, prefix: str = "/registry") -> list[str]:
    """Candidate key prefixes (ending in ``/``) of one resource (see
    :func:`secretkit.core.encryption_config.etcd_prefixes_for`)."""
    return etcd_prefixes_for(resource, group, prefix)


def object_of_key(
    key: str, key_prefix: str, namespaced: bool | None
) -> tuple[str | None, str] | None:
    """``(namespace, name)`` of ``key`` below ``key_prefix``; None when it does not fit.

    ``namespaced`` None: the resource's scope is unknown (a CRD the layout table does
    not know, with no discovery to ask), so either shape names an object:
    ``<name>`` a cluster-scoped one, ``<namespace>/<name>`` a namespaced one.
    """
    if not key.startswith(key_prefix):
        return None
    tail = key[len(key_prefix) :]
    if namespaced is None:
        namespaced = "/" in tail
    if namespaced:
        namespace, sep, name = tail.partition("/")
        if not sep or not namespace or not name or "/" in name:
            return None
        return namespace, name
    if not tail or "/" in tail:
        return None
    return None, tail


def prefixes_for(
    res: ApiResource, prefix: str = "/registry", namespace: str | None = None
) -> list[str]:
    """:func:`etcd_prefixes` of a discovered resource, narrowed to ``namespace``.

    With a namespace, a namespaced resource's range is ``<prefix>/<path>/<namespace>/``
    and a cluster-scoped resource has none (``-n`` selects namespaced objects only).
    """
    prefixes = etcd_prefixes(res.resource, res.group, prefix)
    if namespace is None:
        return prefixes
    return [f"{p}{namespace}/" for p in prefixes] if res.namespaced else []


def list_order(obj: tuple[str | None, str]) -> str:
    """The API's list order (etcd key order) of a ``(namespace, name)``."""
    namespace, name = obj
    return f"{namespace}/{name}" if namespace else name


@dataclass(frozen=True)
class StoredObject:
    """One stored value, with its resource and that resource's provider chain."""

    resource: ApiResource
    chain: tuple[Provider, ...]
    key: str
    #: ``(namespace, name)``; None when the key is below the resource's prefix but fits
    #: no object shape (a deeper path, a stray write): its value is still there to judge
    name: tuple[str | None, str] | None
    value: bytes = field(repr=False)
    #: the key's mod_revision: the object's resourceVersion as the API server reports it
    mod_revision: int = 0


def stored_objects(
    store: EtcdReader,
    resources: Sequence[ApiResource],
    config: EncryptionConfig,
    *,
    prefix: str = "/registry",
    page_size: int = 1000,
    namespace: str | None = None,
    unknown_scope: Collection[ApiResource] = (),
) -> Iterator[StoredObject]:
    """Every stored value of ``resources``, resource by resource, in etcd key order.

    Every key in the resources' ranges is yielded, so no caller can lose a value by
    accident: one that fits no object shape has ``name`` None. ``unknown_scope`` are
    resources whose scope is a guess (``--via etcd`` without discovery): both shapes
    are objects of theirs (see :func:`object_of_key`); with ``namespace`` their range
    is that namespace's, as for any resource marked namespaced.
    """
    for res in resources:
        chain = providers_for(config, res.resource, res.group)
        namespaced: bool | None = None if res in unknown_scope else res.namespaced
        for resource_prefix, key_prefix in zip(
            prefixes_for(res, prefix), prefixes_for(res, prefix, namespace), strict=False
        ):
            for page in store.scan(key_prefix.encode(), page_size=page_size):
                for kv in page:
                    key = kv.key.decode("utf-8", "replace")
                    name = object_of_key(key, resource_prefix, namespaced)
                    yield StoredObject(res, chain, key, name, kv.value, kv.mod_revision)
