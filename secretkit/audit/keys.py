"""Split an etcd key into resource, group, namespace and name (pure).

The resource and group follow the apiserver's storage paths (see
docs/storage-formats.md section 0); namespace and name are the last one or two path
segments. Keys that do not look like ``<prefix>/<resource>/...`` are reported as
resource ``<other>`` so they are still counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from secretkit.core.layout import KeyOwner, Layout

OTHER_RESOURCE = "<other>"
#: the resource name the audit gives apiserver-internal keys (see secretkit.core.layout)
INTERNAL_RESOURCE = "<internal>"


@dataclass(frozen=True)
class KeyParts:
    """The parts of one etcd key; ``group`` is ``""`` for the core group."""

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

    Resource and group come from :mod:`secretkit.core.layout`, so they match what the
    EncryptionConfiguration lookup uses.
    """
    return KeySplitter(prefix).split(key)


class KeySplitter:
    """:func:`split_etcd_key` over one :class:`~secretkit.core.layout.Layout` (cached)."""

    def __init__(self, prefix: str = "/registry", layout: Layout | None = None) -> None:
        self.layout = layout or Layout(prefix)
        self.base = self.layout.base

    def owner(self, key: str | bytes) -> KeyOwner:
        """The key's owner in the layout (resource, internal, unknown or outside)."""
        return self.layout.owner(key)

    def split(self, key: str) -> KeyParts:
        """Split one key."""
        owner = self.layout.owner(key)
        if owner.kind == "outside":
            return KeyParts(OTHER_RESOURCE, "", None, key)
        namespace, name = self.layout.object_name(key, owner)
        if owner.kind == "internal":
            return KeyParts(INTERNAL_RESOURCE, "", None, f"{owner.path}/{name}".rstrip("/"))
        group, resource = owner.resources[0]
        if owner.namespaced is None and namespace is None and "/" in name:
            namespace, name = name.split("/", 1)
        return KeyParts(resource, group, namespace, name)

    def resource(self, key: str | bytes) -> tuple[str, str] | None:
        """``(resource, group)`` of ``key``; None outside the prefix. Internal keys give
        ``(INTERNAL_RESOURCE, "")``."""
        owner = self.layout.owner(key)
        if owner.kind == "outside":
            return None
        if owner.kind == "internal":
            return INTERNAL_RESOURCE, ""
        group, resource = owner.resources[0]
        return resource, group


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
    candidates = Layout(prefix).prefixes(group, name)
    return candidates[0] if len(candidates) == 1 else None
