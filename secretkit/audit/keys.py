"""Split an etcd key into resource, group, namespace and name (pure).

The resource and group follow the apiserver's storage paths (see
docs/storage-formats.md section 0); namespace and name are the last one or two path
segments. Keys that do not look like ``<prefix>/<resource>/...`` are reported as
resource ``<other>`` so they are still counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from secretkit.encryption_config import etcd_prefixes_for, resource_for_etcd_key
from secretkit.errors import SecretkitError

#: resources stored at ``<prefix>/<resource>/<name>`` (no namespace)
_CLUSTER_SCOPED = frozenset(
    {
        "namespaces",
        "nodes",
        "persistentvolumes",
        "clusterroles",
        "clusterrolebindings",
        "customresourcedefinitions",
        "apiservices",
        "priorityclasses",
        "storageclasses",
        "csidrivers",
        "csinodes",
        "volumeattachments",
        "validatingwebhookconfigurations",
        "mutatingwebhookconfigurations",
        "certificatesigningrequests",
        "runtimeclasses",
        "ingressclasses",
        "flowschemas",
        "prioritylevelconfigurations",
    }
)

OTHER_RESOURCE = "<other>"


@dataclass(frozen=True)
class KeyParts:
    """The parts of one etcd key; ``group`` is ``""`` for the core and apps groups."""

    resource: str
    group: str
    namespace: str | None
    name: str

    @property
    def qualified_resource(self) -> str:
        """``secrets`` for core resources, ``<resource>.<group>`` otherwise."""
        return f"{self.resource}.{self.group}" if self.group else self.resource


def normalize_prefix(prefix: str) -> str:
    """``/registry/`` and ``/registry`` both become ``/registry``."""
    return "/" + prefix.strip("/") if prefix.strip("/") else ""


def split_etcd_key(key: str, prefix: str = "/registry") -> KeyParts:
    """Split ``key`` (below ``prefix``) into its parts; never raises.

    Resource and group come from :func:`resource_for_etcd_key`, so they match what
    the EncryptionConfiguration lookup uses.
    """
    return KeySplitter(prefix).split(key)


class KeySplitter:
    """:func:`split_etcd_key` with a cache of the resource path segments (scan hot path)."""

    def __init__(self, prefix: str = "/registry") -> None:
        self.base = normalize_prefix(prefix)
        self._root = self.base + "/"
        self._resources: dict[tuple[str, str], tuple[str, str, int] | None] = {}

    def split(self, key: str) -> KeyParts:
        """Split one key."""
        if not key.startswith(self._root):
            return KeyParts(OTHER_RESOURCE, "", None, key)
        segments = key[len(self._root) :].split("/")
        first = segments[0]
        second = segments[1] if len(segments) > 2 and (first == "services" or "." in first) else ""
        cache_key = (first, second)
        if cache_key in self._resources:
            found = self._resources[cache_key]
        else:
            found = self._resources[cache_key] = self._resource(key, first, second)
        if found is None:
            return KeyParts(OTHER_RESOURCE, "", None, key)
        resource, group, consumed = found
        return _with_name(resource, group, [s for s in segments[consumed:] if s])

    def resource(self, key: str) -> tuple[str, str] | None:
        """``(resource, group)`` of ``key`` (None outside the prefix); the cheap hot path."""
        if not key.startswith(self._root):
            return None
        start = len(self._root)
        slash = key.find("/", start)
        first = key[start:slash] if slash >= 0 else key[start:]
        second = ""
        if slash >= 0 and (first == "services" or "." in first):
            end = key.find("/", slash + 1)
            if end >= 0:
                second = key[slash + 1 : end]
        cache_key = (first, second)
        try:
            found = self._resources[cache_key]
        except KeyError:
            found = self._resources[cache_key] = self._resource(key, first, second)
        return None if found is None else (found[0], found[1])

    def _resource(self, key: str, first: str, second: str) -> tuple[str, str, int] | None:
        try:
            resource, group = resource_for_etcd_key(key, self.base or "/")
        except SecretkitError:
            return None
        return resource, group, 2 if second else 1


def _with_name(resource: str, group: str, tail: list[str]) -> KeyParts:
    if not tail:
        return KeyParts(resource, group, None, "")
    if len(tail) == 1 or resource in _CLUSTER_SCOPED:
        return KeyParts(resource, group, None, "/".join(tail))
    return KeyParts(resource, group, tail[0], "/".join(tail[1:]))


def resource_matches(parts: KeyParts, wanted: str) -> bool:
    """True when ``wanted`` (``secrets``, ``deployments.apps``) names this key's resource."""
    if "." in wanted:
        return parts.qualified_resource == wanted
    return parts.resource == wanted


def range_prefix_for(resource: str, prefix: str = "/registry") -> str | None:
    """The etcd key prefix holding every object of ``resource``, or None if unsure.

    Resources with one known path (core and built-in groups) get a narrow range; a
    group resource that could live under two layouts is found by scanning the whole
    prefix and filtering.
    """
    name, _, group = resource.partition(".")
    candidates = etcd_prefixes_for(name, group, prefix)
    return candidates[0] if len(candidates) == 1 else None
