"""Split an etcd key into resource, group, namespace and name (pure).

The resource and group follow the apiserver's storage paths (see
docs/storage-formats.md section 0); namespace and name are the last one or two path
segments. Keys that do not look like ``<prefix>/<resource>/...`` are reported as
resource ``<other>`` so they are still counted.
"""

from __future__ import annotations

from dataclasses import dataclass

#: storage path (first segments after the prefix) -> (resource, group)
_SPECIAL_PATHS: dict[tuple[str, ...], tuple[str, str]] = {
    ("services", "specs"): ("services", ""),
    ("services", "endpoints"): ("endpoints", ""),
    ("minions",): ("nodes", ""),
    ("controllers",): ("replicationcontrollers", ""),
}

#: apps resources are stored without a group segment
_APPS_RESOURCES = frozenset(
    {"deployments", "replicasets", "statefulsets", "daemonsets", "controllerrevisions"}
)

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
    """Split ``key`` (below ``prefix``) into its parts; never raises."""
    base = normalize_prefix(prefix)
    rest = key[len(base) :] if key.startswith(base + "/") else key
    segments = [s for s in rest.split("/") if s]
    if not segments:
        return KeyParts(OTHER_RESOURCE, "", None, key)
    for path, (resource, group) in _SPECIAL_PATHS.items():
        if tuple(segments[: len(path)]) == path:
            return _with_name(resource, group, segments[len(path) :], key)
    first = segments[0]
    if "." in first and len(segments) >= 2:
        # ``<group>/<resource>/...``: only non-core groups have a dot
        return _with_name(segments[1], first, segments[2:], key)
    return _with_name(first, "", segments[1:], key)


def _with_name(resource: str, group: str, tail: list[str], key: str) -> KeyParts:
    if group == "" and resource in _APPS_RESOURCES:
        group = "apps"
    if not tail:
        return KeyParts(resource, group, None, "")
    if len(tail) == 1 or resource in _CLUSTER_SCOPED:
        return KeyParts(resource, group, None, "/".join(tail))
    return KeyParts(resource, group, tail[0], "/".join(tail[1:]))


def resource_matches(parts: KeyParts, wanted: str) -> bool:
    """True when ``wanted`` (``secrets``, ``deployments.apps``) names this key's resource."""
    if "." in wanted:
        return parts.qualified_resource == wanted
    return parts.resource == wanted and parts.group in ("", "apps")


def range_prefix_for(resource: str, prefix: str = "/registry") -> str | None:
    """The etcd key prefix holding every object of ``resource``, or None if unsure.

    Only core resources with a well-known path get a narrow range; anything else is
    found by scanning the whole prefix and filtering.
    """
    base = normalize_prefix(prefix)
    if "." in resource:
        return None
    for path, (name, group) in _SPECIAL_PATHS.items():
        if name == resource and group == "":
            return base + "/" + "/".join(path) + "/"
    return f"{base}/{resource}/"
