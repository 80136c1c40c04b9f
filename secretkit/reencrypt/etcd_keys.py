"""Where a resource's objects live in etcd, and which object a key names."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from secretkit.core.encryption_config import EncryptionConfig, etcd_prefixes_for, providers_for
from secretkit.core.encryption_config.model import Provider
from secretkit.etcd.interface import EtcdReader
from secretkit.kube.discovery import ApiResource


def etcd_prefixes(resource: str, group: str, prefix: str = "/registry") -> list[str]:
    """Candidate key prefixes (ending in ``/``) of one resource (see
    :func:`secretkit.core.encryption_config.etcd_prefixes_for`)."""
    return etcd_prefixes_for(resource, group, prefix)


def object_of_key(key: str, key_prefix: str, namespaced: bool) -> tuple[str | None, str] | None:
    """``(namespace, name)`` of ``key`` below ``key_prefix``; None when it does not fit."""
    if not key.startswith(key_prefix):
        return None
    tail = key[len(key_prefix) :]
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
    """One object's stored value, with its resource and that resource's provider chain."""

    resource: ApiResource
    chain: tuple[Provider, ...]
    key: str
    name: tuple[str | None, str]
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
) -> Iterator[StoredObject]:
    """Every stored object of ``resources``, resource by resource, in etcd key order.

    Keys below a resource's prefixes that name no object (deeper paths, other
    layouts) are skipped.
    """
    for res in resources:
        chain = providers_for(config, res.resource, res.group)
        for resource_prefix, key_prefix in zip(
            prefixes_for(res, prefix), prefixes_for(res, prefix, namespace), strict=False
        ):
            for page in store.scan(key_prefix.encode(), page_size=page_size):
                for kv in page:
                    key = kv.key.decode("utf-8", "replace")
                    name = object_of_key(key, resource_prefix, res.namespaced)
                    if name is not None:
                        yield StoredObject(res, chain, key, name, kv.value, kv.mod_revision)
