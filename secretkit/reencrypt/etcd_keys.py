"""Where a resource's objects live in etcd, and which object a key names (pure)."""

from __future__ import annotations

from secretkit.encryption_config import etcd_prefixes_for
from secretkit.kube.discovery import ApiResource


def etcd_prefixes(resource: str, group: str, prefix: str = "/registry") -> list[str]:
    """Candidate key prefixes (ending in ``/``) of one resource (see
    :func:`secretkit.encryption_config.etcd_prefixes_for`)."""
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


def prefixes_for(res: ApiResource, prefix: str = "/registry") -> list[str]:
    """:func:`etcd_prefixes` of a discovered resource."""
    return etcd_prefixes(res.resource, res.group, prefix)
