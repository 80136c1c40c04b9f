"""Which providers apply to a resource, and which resource an etcd key belongs to.

Lookup follows upstream ``transformerFromOverrides``: the exact ``resource.group``,
then ``*.<group>`` (``*.`` is the core group), then ``*.*``, else identity. A
resource listed in several rules gets the providers of all of them, in file order
(upstream appends them to one prefix chain).
"""

from __future__ import annotations

from secretkit.encryption_config.model import EncryptionConfig, IdentityProvider, Provider
from secretkit.encryption_config.validate import parse_group_resource
from secretkit.errors import UsageError

#: etcd path segment -> (resource, group) for built-in kube-apiserver resources, which are
#: stored without a group segment (CRDs and aggregated APIs use /<group>/<resource>/)
_BUILTIN_SEGMENTS: dict[str, tuple[str, str]] = {
    # core
    "pods": ("pods", ""),
    "minions": ("nodes", ""),
    "controllers": ("replicationcontrollers", ""),
    "configmaps": ("configmaps", ""),
    "secrets": ("secrets", ""),
    "namespaces": ("namespaces", ""),
    "serviceaccounts": ("serviceaccounts", ""),
    "persistentvolumes": ("persistentvolumes", ""),
    "persistentvolumeclaims": ("persistentvolumeclaims", ""),
    "events": ("events", ""),
    "limitranges": ("limitranges", ""),
    "resourcequotas": ("resourcequotas", ""),
    "podtemplates": ("podtemplates", ""),
    # apps
    "deployments": ("deployments", "apps"),
    "replicasets": ("replicasets", "apps"),
    "daemonsets": ("daemonsets", "apps"),
    "statefulsets": ("statefulsets", "apps"),
    "controllerrevisions": ("controllerrevisions", "apps"),
    # other built-in groups (kube-apiserver stores these without a group segment too)
    "jobs": ("jobs", "batch"),
    "cronjobs": ("cronjobs", "batch"),
    "horizontalpodautoscalers": ("horizontalpodautoscalers", "autoscaling"),
    "poddisruptionbudgets": ("poddisruptionbudgets", "policy"),
    "networkpolicies": ("networkpolicies", "networking.k8s.io"),
    "ingress": ("ingresses", "networking.k8s.io"),
    "ingressclasses": ("ingressclasses", "networking.k8s.io"),
    "roles": ("roles", "rbac.authorization.k8s.io"),
    "rolebindings": ("rolebindings", "rbac.authorization.k8s.io"),
    "clusterroles": ("clusterroles", "rbac.authorization.k8s.io"),
    "clusterrolebindings": ("clusterrolebindings", "rbac.authorization.k8s.io"),
    "storageclasses": ("storageclasses", "storage.k8s.io"),
    "volumeattachments": ("volumeattachments", "storage.k8s.io"),
    "csinodes": ("csinodes", "storage.k8s.io"),
    "csidrivers": ("csidrivers", "storage.k8s.io"),
    "priorityclasses": ("priorityclasses", "scheduling.k8s.io"),
    "leases": ("leases", "coordination.k8s.io"),
    "certificatesigningrequests": ("certificatesigningrequests", "certificates.k8s.io"),
    "endpointslices": ("endpointslices", "discovery.k8s.io"),
    "runtimeclasses": ("runtimeclasses", "node.k8s.io"),
    "flowschemas": ("flowschemas", "flowcontrol.apiserver.k8s.io"),
    "prioritylevelconfigurations": (
        "prioritylevelconfigurations",
        "flowcontrol.apiserver.k8s.io",
    ),
    "validatingwebhookconfigurations": (
        "validatingwebhookconfigurations",
        "admissionregistration.k8s.io",
    ),
    "mutatingwebhookconfigurations": (
        "mutatingwebhookconfigurations",
        "admissionregistration.k8s.io",
    ),
}


def _rule_table(cfg: EncryptionConfig) -> dict[tuple[str, str], tuple[Provider, ...]]:
    table: dict[tuple[str, str], tuple[Provider, ...]] = {}
    for rule in cfg.rules:
        for name in rule.resources:
            key = parse_group_resource(name)
            table[key] = table.get(key, ()) + rule.providers
    return table


def providers_for(cfg: EncryptionConfig, resource: str, group: str = "") -> tuple[Provider, ...]:
    """Return the ordered providers for ``resource`` in ``group`` (``""`` = core)."""
    table = _rule_table(cfg)
    for key in ((group, resource), (group, "*"), ("*", "*")):
        if key in table:
            return table[key]
    return (IdentityProvider(),)


def resource_for_etcd_key(etcd_key: str, prefix: str = "/registry") -> tuple[str, str]:
    """Return ``(resource, group)`` of the object stored under ``etcd_key``.

    Built-in resources are stored as ``<prefix>/<resource>/...`` with a few legacy
    names (``services/specs``, ``services/endpoints``, ``minions``, ``controllers``,
    ``ingress``); CRDs and aggregated APIs as ``<prefix>/<group>/<resource>/...``.
    """
    root = prefix.rstrip("/") + "/"
    if not etcd_key.startswith(root):
        raise UsageError(
            f"etcd key is not under the prefix {prefix!r}",
            where=etcd_key,
            hint="pass the apiserver's --etcd-prefix if it is not /registry",
        )
    parts = etcd_key[len(root) :].split("/")
    first = parts[0]
    if not first:
        raise UsageError("etcd key names no resource", where=etcd_key)
    if first == "services" and len(parts) > 1:
        return ("endpoints", "") if parts[1] == "endpoints" else ("services", "")
    if first in _BUILTIN_SEGMENTS:
        return _BUILTIN_SEGMENTS[first]
    if "." in first and len(parts) > 1 and parts[1]:
        return parts[1], first
    return first, ""


#: (resource, group) -> etcd path segment: the inverse of _BUILTIN_SEGMENTS, plus the
#: two resources that share the ``services`` segment
_SEGMENT_OF: dict[tuple[str, str], str] = {
    **{rg: segment for segment, rg in _BUILTIN_SEGMENTS.items()},
    ("services", ""): "services/specs",
    ("endpoints", ""): "services/endpoints",
}


def etcd_prefixes_for(resource: str, group: str = "", prefix: str = "/registry") -> list[str]:
    """Key prefixes (ending in ``/``) that can hold objects of ``resource`` in ``group``.

    The inverse of :func:`resource_for_etcd_key`. Built-in resources of every group
    are stored without a group segment (``roles.rbac.authorization.k8s.io`` lives
    under ``<prefix>/roles/``); CRDs and aggregated APIs under ``<prefix>/<group>/``.
    For a group resource we do not know, both layouts are returned: a safety check
    that scanned only one could miss objects, and an empty range is cheap to read.
    A wildcard (``*``) resource or group returns the whole ``prefix``.
    """
    base = "/" + prefix.strip("/") if prefix.strip("/") else ""
    if "*" in (resource, group):
        return [base + "/"]
    segment = _SEGMENT_OF.get((resource, group))
    if segment is not None:
        return [f"{base}/{segment}/"]
    if not group:
        return [f"{base}/{resource}/"]
    return [f"{base}/{resource}/", f"{base}/{group}/{resource}/"]
