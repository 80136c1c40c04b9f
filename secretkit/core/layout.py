"""Where kube-apiserver keeps each resource in etcd: the one table of key <-> resource.

Pure data and lookups, no I/O. The table was read off a real kube-apiserver v1.36.2
(``tests/data/real-apiserver/etcd-layout.json``; a test keeps the two in step):

* built-in resources live at ``<prefix>/<path>/[<namespace>/]<name>`` where ``<path>``
  is the resource name *without its group* (``/registry/deployments/``), except five
  irregular ones (nodes -> ``minions``, services -> ``services/specs``, endpoints ->
  ``services/endpoints``, replicationcontrollers -> ``controllers``, ingresses ->
  ``ingress``);
* ``apiservices``, CRDs and custom resources live at ``<prefix>/<group>/<resource>/``;
* both Event APIs (core ``events`` and ``events.events.k8s.io``) share ``events/``.
  kube-apiserver picks a value's transformer by the *API* resource that reads or
  writes it, so a key there is read with either resource's providers: callers judge
  it under every owner (:attr:`KeyOwner.resources`);
* a few keys belong to no API resource (:data:`INTERNAL_KEYS`): the apiserver writes
  and reads them itself, in plaintext, whatever the EncryptionConfiguration says.

Unknown keys are still given an owner (``kind == "unknown"``): a dotted first segment
is read as ``<group>/<resource>`` (how CRDs are stored), anything else as a core
resource of that name; callers say so rather than guess silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

DEFAULT_PREFIX = "/registry"


@dataclass(frozen=True, slots=True)
class ResourceLayout:
    """One stored API resource and the path below the etcd prefix that holds it."""

    group: str
    resource: str
    namespaced: bool
    #: below the prefix, no leading or trailing slash: ``minions``, ``services/specs``,
    #: ``apiregistration.k8s.io/apiservices``
    path: str

    @property
    def qualified(self) -> str:
        """``secrets`` for the core group, ``<resource>.<group>`` otherwise."""
        return f"{self.resource}.{self.group}" if self.group else self.resource


def _r(group: str, resource: str, namespaced: bool, path: str) -> ResourceLayout:
    return ResourceLayout(group, resource, namespaced, path)


#: every resource a kube-apiserver v1.36.2 stores (preferred versions; from its discovery
#: and its etcd keyspace). Order: as discovery lists them.
BUILTIN_RESOURCES: tuple[ResourceLayout, ...] = (
    _r("", "configmaps", True, "configmaps"),
    _r("", "endpoints", True, "services/endpoints"),
    _r("", "events", True, "events"),
    _r("", "limitranges", True, "limitranges"),
    _r("", "namespaces", False, "namespaces"),
    _r("", "nodes", False, "minions"),
    _r("", "persistentvolumeclaims", True, "persistentvolumeclaims"),
    _r("", "persistentvolumes", False, "persistentvolumes"),
    _r("", "pods", True, "pods"),
    _r("", "podtemplates", True, "podtemplates"),
    _r("", "replicationcontrollers", True, "controllers"),
    _r("", "resourcequotas", True, "resourcequotas"),
    _r("", "secrets", True, "secrets"),
    _r("", "serviceaccounts", True, "serviceaccounts"),
    _r("", "services", True, "services/specs"),
    _r("apiregistration.k8s.io", "apiservices", False, "apiregistration.k8s.io/apiservices"),
    _r("apps", "controllerrevisions", True, "controllerrevisions"),
    _r("apps", "daemonsets", True, "daemonsets"),
    _r("apps", "deployments", True, "deployments"),
    _r("apps", "replicasets", True, "replicasets"),
    _r("apps", "statefulsets", True, "statefulsets"),
    _r("events.k8s.io", "events", True, "events"),
    _r("autoscaling", "horizontalpodautoscalers", True, "horizontalpodautoscalers"),
    _r("batch", "cronjobs", True, "cronjobs"),
    _r("batch", "jobs", True, "jobs"),
    _r("certificates.k8s.io", "certificatesigningrequests", False, "certificatesigningrequests"),
    _r("networking.k8s.io", "ingressclasses", False, "ingressclasses"),
    _r("networking.k8s.io", "ingresses", True, "ingress"),
    _r("networking.k8s.io", "ipaddresses", False, "ipaddresses"),
    _r("networking.k8s.io", "networkpolicies", True, "networkpolicies"),
    _r("networking.k8s.io", "servicecidrs", False, "servicecidrs"),
    _r("policy", "poddisruptionbudgets", True, "poddisruptionbudgets"),
    _r("rbac.authorization.k8s.io", "clusterrolebindings", False, "clusterrolebindings"),
    _r("rbac.authorization.k8s.io", "clusterroles", False, "clusterroles"),
    _r("rbac.authorization.k8s.io", "rolebindings", True, "rolebindings"),
    _r("rbac.authorization.k8s.io", "roles", True, "roles"),
    _r("storage.k8s.io", "csidrivers", False, "csidrivers"),
    _r("storage.k8s.io", "csinodes", False, "csinodes"),
    _r("storage.k8s.io", "csistoragecapacities", True, "csistoragecapacities"),
    _r("storage.k8s.io", "storageclasses", False, "storageclasses"),
    _r("storage.k8s.io", "volumeattachments", False, "volumeattachments"),
    _r("storage.k8s.io", "volumeattributesclasses", False, "volumeattributesclasses"),
    _r("admissionregistration.k8s.io", "mutatingadmissionpolicies", False,
       "mutatingadmissionpolicies"),
    _r("admissionregistration.k8s.io", "mutatingadmissionpolicybindings", False,
       "mutatingadmissionpolicybindings"),
    _r("admissionregistration.k8s.io", "mutatingwebhookconfigurations", False,
       "mutatingwebhookconfigurations"),
    _r("admissionregistration.k8s.io", "validatingadmissionpolicies", False,
       "validatingadmissionpolicies"),
    _r("admissionregistration.k8s.io", "validatingadmissionpolicybindings", False,
       "validatingadmissionpolicybindings"),
    _r("admissionregistration.k8s.io", "validatingwebhookconfigurations", False,
       "validatingwebhookconfigurations"),
    _r("apiextensions.k8s.io", "customresourcedefinitions", False,
       "apiextensions.k8s.io/customresourcedefinitions"),
    _r("scheduling.k8s.io", "priorityclasses", False, "priorityclasses"),
    _r("coordination.k8s.io", "leases", True, "leases"),
    _r("node.k8s.io", "runtimeclasses", False, "runtimeclasses"),
    _r("discovery.k8s.io", "endpointslices", True, "endpointslices"),
    _r("resource.k8s.io", "deviceclasses", False, "deviceclasses"),
    _r("resource.k8s.io", "resourceclaims", True, "resourceclaims"),
    _r("resource.k8s.io", "resourceclaimtemplates", True, "resourceclaimtemplates"),
    _r("resource.k8s.io", "resourceslices", False, "resourceslices"),
    _r("flowcontrol.apiserver.k8s.io", "flowschemas", False, "flowschemas"),
    _r("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations", False,
       "prioritylevelconfigurations"),
)

#: built-in API groups (``""`` is core): a group outside this set is a CRD or an
#: aggregated API, stored under ``<prefix>/<group>/<resource>/``
BUILTIN_GROUPS: frozenset[str] = frozenset(r.group for r in BUILTIN_RESOURCES)


@dataclass(frozen=True, slots=True)
class InternalKey:
    """Keys below ``path`` belong to no API resource: the apiserver's own bookkeeping."""

    #: below the prefix; a trailing ``/`` means "every key under it"
    path: str
    what: str


#: keys kube-apiserver writes in plaintext whatever the config (it bypasses the
#: transformers for them). No API request can reach them, no EncryptionConfiguration
#: can cover them, and they hold lease and allocation data, not Secrets.
INTERNAL_KEYS: tuple[InternalKey, ...] = (
    InternalKey(
        "masterleases/",
        "apiserver endpoint lease (v1 Endpoints, 15 s etcd lease, rewritten every 10 s)",
    ),
    InternalKey(
        "peerserverleases/",
        "apiserver peer-endpoint lease (v1 Endpoints, 15 s etcd lease, rewritten every 10 s)",
    ),
    InternalKey(
        "ranges/",
        "service IP / NodePort allocation bitmap (v1 RangeAllocation)",
    ),
)

OwnerKind = Literal["resource", "internal", "unknown", "outside"]


@dataclass(frozen=True, slots=True)
class KeyOwner:
    """What an etcd key belongs to.

    ``resources`` lists ``(group, resource)`` of every API resource whose storage can
    read or write the key (two for ``events/``, one otherwise, none for internal keys
    and keys outside the prefix). ``path`` is the resource path below the prefix the
    key was matched by, so the object's ``namespace/name`` follows it.
    """

    kind: OwnerKind
    resources: tuple[tuple[str, str], ...] = ()
    namespaced: bool | None = None
    path: str = ""
    internal: InternalKey | None = None

    @property
    def qualified(self) -> str:
        """The first owner as ``resource[.group]``, ``<internal>`` or ``<other>``."""
        if not self.resources:
            return "<internal>" if self.kind == "internal" else "<other>"
        group, resource = self.resources[0]
        return f"{resource}.{group}" if group else resource


def _normalize(prefix: str) -> str:
    """``/registry/`` and ``registry`` become ``/registry``; ``/`` becomes ``""``."""
    stripped = prefix.strip("/")
    return "/" + stripped if stripped else ""


class Layout:
    """Lookups over the table for one ``--etcd-prefix``, plus resources found by discovery.

    ``extra`` adds resources the table does not know (CRDs, or built-ins of another
    Kubernetes version) as discovery reports them; an entry for a known
    ``(group, resource)`` replaces the table's.
    """

    def __init__(
        self, prefix: str = DEFAULT_PREFIX, extra: Iterable[ResourceLayout] = ()
    ) -> None:
        self.base = _normalize(prefix)
        self.root = self.base + "/"
        self._root_bytes = self.root.encode()
        by_name: dict[tuple[str, str], ResourceLayout] = {
            (r.group, r.resource): r for r in BUILTIN_RESOURCES
        }
        for r in extra:
            by_name[(r.group, r.resource)] = r
        self._by_name = by_name
        by_path: dict[str, list[ResourceLayout]] = {}
        for r in by_name.values():
            by_path.setdefault(r.path, []).append(r)
        self._by_path = by_path
        # one- and two-segment paths (``services/specs``, ``<group>/<resource>``)
        self._two_segment_heads = {p.split("/", 1)[0] for p in by_path if "/" in p}
        # first segments below the prefix that belong to a known resource or to the
        # apiserver itself: no other resource's guessed ``<resource>/`` may read them
        self._taken_heads = {p.split("/", 1)[0] for p in by_path} | {
            k.path.split("/", 1)[0] for k in INTERNAL_KEYS
        }
        self._owners: dict[bytes, KeyOwner] = {}

    # -- resource -> keys --------------------------------------------------------------
    def resources(self) -> list[ResourceLayout]:
        """Every known stored resource (table plus ``extra``)."""
        return list(self._by_name.values())

    def find(self, group: str, resource: str) -> ResourceLayout | None:
        """The known layout of ``resource`` in ``group``, or None."""
        return self._by_name.get((group, resource))

    def prefixes(self, group: str, resource: str) -> list[str]:
        """Key prefixes (ending in ``/``) that can hold objects of ``resource``.

        Known resources have one. A group outside the built-in groups is a CRD or an
        aggregated API (``<group>/<resource>/``); a resource of a built-in group the
        table does not know (another Kubernetes version) would follow the built-in
        rule (``<resource>/``) -- both are returned for a dotted unknown group, since
        a check that scanned too little could pass while values still need a key.
        The second is left out when ``<resource>/`` belongs to a known resource or to
        the apiserver (``jobs.example.com`` must not read batch Jobs at ``jobs/``,
        nor ``services.example.com`` the Services and Endpoints under ``services/``,
        nor ``ranges.example.com`` the internal ``ranges/``): those values are another
        resource's, judged by its chain. A wildcard resource or group returns the
        whole prefix.
        """
        if "*" in (resource, group):
            return [self.root]
        known = self._by_name.get((group, resource))
        if known is not None:
            return [f"{self.root}{known.path}/"]
        if not group or group in BUILTIN_GROUPS:
            return [f"{self.root}{resource}/"]
        if "." not in group:
            return [f"{self.root}{resource}/"]
        if resource in self._taken_heads:
            return [f"{self.root}{group}/{resource}/"]
        return [f"{self.root}{group}/{resource}/", f"{self.root}{resource}/"]

    # -- key -> owner --------------------------------------------------------------------
    def owner(self, key: bytes | str) -> KeyOwner:
        """The owner of ``key``; cached per resource path, so cheap on a scan's hot path."""
        raw = key.encode("utf-8", "surrogateescape") if isinstance(key, str) else key
        if not raw.startswith(self._root_bytes):
            return KeyOwner("outside")
        start = len(self._root_bytes)
        slash = raw.find(b"/", start)
        head = raw[start:slash] if slash >= 0 else raw[start:]
        cache_key = head
        text_head = head.decode("utf-8", "replace")
        if text_head in self._two_segment_heads or b"." in head:
            end = raw.find(b"/", slash + 1) if slash >= 0 else -1
            cache_key = raw[start:end] if end >= 0 else raw[start:]
        found = self._owners.get(cache_key)
        if found is None:
            found = self._owner_of(cache_key.decode("utf-8", "replace"))
            if len(self._owners) < 4096:
                self._owners[cache_key] = found
        return found

    def _owner_of(self, path: str) -> KeyOwner:
        for internal in INTERNAL_KEYS:
            if path + "/" == internal.path or path.startswith(internal.path):
                return KeyOwner("internal", internal=internal, path=internal.path.rstrip("/"))
        owners = self._by_path.get(path)
        if owners is None and "/" in path:
            # ``services/<other>`` or a one-segment resource with a deeper key
            owners = self._by_path.get(path.split("/", 1)[0])
            if owners is not None:
                path = path.split("/", 1)[0]
        if owners:
            return KeyOwner(
                "resource",
                resources=tuple((r.group, r.resource) for r in owners),
                namespaced=owners[0].namespaced,
                path=path,
            )
        head, _, rest = path.partition("/")
        if not head:
            return KeyOwner("unknown")
        if "." in head and rest:
            # a CRD or aggregated API: <group>/<resource>
            return KeyOwner("unknown", resources=((head, rest),), path=path)
        return KeyOwner("unknown", resources=(("", head),), path=head)

    def object_name(self, key: bytes | str, owner: KeyOwner) -> tuple[str | None, str]:
        """``(namespace, name)`` of ``key`` below its owner's path (namespace None if none)."""
        text = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
        tail = text[len(self.root) + len(owner.path) :].lstrip("/")
        if owner.namespaced is False or "/" not in tail:
            return None, tail
        namespace, _, name = tail.partition("/")
        return namespace, name
