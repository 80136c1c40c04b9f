"""Every other resource kube-apiserver v1.36.2 stores, served without a schema.

The typed kinds of :mod:`.kinds` are the ones the toolkit's flows write and read
field by field (Secrets, ConfigMaps, Leases, ControllerRevisions): protobuf messages
and validation like the real ones. Every other stored resource of the captured layout
is served from its discovery row below (names, scope, short names and categories as
the real apiserver lists them; ``tests/unit/sandbox/test_discovery_captured.py``
compares), so that a ``*.*`` rule and ``secretkit reencrypt --from-config`` meet every
stored type a real cluster has, at the real etcd prefixes.

What is not real about them: an object is accepted as sent (metadata is checked, the
rest is not), has no subresources, and is stored as JSON, the encoding kube-apiserver
uses for APIServices, CRDs and custom resources, not the protobuf it uses for
built-in types. The encryption around the value is the same either way.
"""

from __future__ import annotations

import json
from typing import Any

from secretkit.sandbox.apiserver.resources import AGE_COLUMN, NAME_COLUMN, ResourceType
from secretkit.sandbox.apiserver.status import invalid

#: (group, version, plural, singular, kind, namespaced, short names, categories), the
#: stored resources of kube-apiserver v1.36.2's discovery that :mod:`.kinds` does not type
_ROWS: tuple[tuple[str, str, str, str, str, bool, tuple[str, ...], tuple[str, ...]], ...] = (
    ("", "v1", "endpoints", "endpoints", "Endpoints", True, ("ep",), ()),
    ("", "v1", "events", "event", "Event", True, ("ev",), ()),
    ("", "v1", "limitranges", "limitrange", "LimitRange", True, ("limits",), ()),
    ("", "v1", "nodes", "node", "Node", False, ("no",), ()),
    ("", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim",
     True, ("pvc",), ()),
    ("", "v1", "persistentvolumes", "persistentvolume", "PersistentVolume", False, ("pv",), ()),
    ("", "v1", "pods", "pod", "Pod", True, ("po",), ("all",)),
    ("", "v1", "podtemplates", "podtemplate", "PodTemplate", True, (), ()),
    ("", "v1", "replicationcontrollers", "replicationcontroller", "ReplicationController",
     True, ("rc",), ("all",)),
    ("", "v1", "resourcequotas", "resourcequota", "ResourceQuota", True, ("quota",), ()),
    ("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", True, ("sa",), ()),
    ("", "v1", "services", "service", "Service", True, ("svc",), ("all",)),
    ("apiregistration.k8s.io", "v1", "apiservices", "apiservice", "APIService", False, (),
     ("api-extensions",)),
    ("apps", "v1", "daemonsets", "daemonset", "DaemonSet", True, ("ds",), ("all",)),
    ("apps", "v1", "deployments", "deployment", "Deployment", True, ("deploy",), ("all",)),
    ("apps", "v1", "replicasets", "replicaset", "ReplicaSet", True, ("rs",), ("all",)),
    ("apps", "v1", "statefulsets", "statefulset", "StatefulSet", True, ("sts",), ("all",)),
    ("events.k8s.io", "v1", "events", "event", "Event", True, ("ev",), ()),
    ("autoscaling", "v2", "horizontalpodautoscalers", "horizontalpodautoscaler",
     "HorizontalPodAutoscaler", True, ("hpa",), ("all",)),
    ("batch", "v1", "cronjobs", "cronjob", "CronJob", True, ("cj",), ("all",)),
    ("batch", "v1", "jobs", "job", "Job", True, (), ("all",)),
    ("certificates.k8s.io", "v1", "certificatesigningrequests", "certificatesigningrequest",
     "CertificateSigningRequest", False, ("csr",), ()),
    ("networking.k8s.io", "v1", "ingressclasses", "ingressclass", "IngressClass", False, (),
     ()),
    ("networking.k8s.io", "v1", "ingresses", "ingress", "Ingress", True, ("ing",), ()),
    ("networking.k8s.io", "v1", "ipaddresses", "ipaddress", "IPAddress", False, ("ip",), ()),
    ("networking.k8s.io", "v1", "networkpolicies", "networkpolicy", "NetworkPolicy", True,
     ("netpol",), ()),
    ("networking.k8s.io", "v1", "servicecidrs", "servicecidr", "ServiceCIDR", False, (), ()),
    ("policy", "v1", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget",
     True, ("pdb",), ()),
    ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding",
     "ClusterRoleBinding", False, (), ()),
    ("rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", False,
     (), ()),
    ("rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", True,
     (), ()),
    ("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", True, (), ()),
    ("storage.k8s.io", "v1", "csidrivers", "csidriver", "CSIDriver", False, (), ()),
    ("storage.k8s.io", "v1", "csinodes", "csinode", "CSINode", False, (), ()),
    ("storage.k8s.io", "v1", "csistoragecapacities", "csistoragecapacity",
     "CSIStorageCapacity", True, (), ()),
    ("storage.k8s.io", "v1", "storageclasses", "storageclass", "StorageClass", False, ("sc",),
     ()),
    ("storage.k8s.io", "v1", "volumeattachments", "volumeattachment", "VolumeAttachment",
     False, (), ()),
    ("storage.k8s.io", "v1", "volumeattributesclasses", "volumeattributesclass",
     "VolumeAttributesClass", False, ("vac",), ()),
    ("admissionregistration.k8s.io", "v1", "mutatingadmissionpolicies",
     "mutatingadmissionpolicy", "MutatingAdmissionPolicy", False, (), ("api-extensions",)),
    ("admissionregistration.k8s.io", "v1", "mutatingadmissionpolicybindings",
     "mutatingadmissionpolicybinding", "MutatingAdmissionPolicyBinding", False, (),
     ("api-extensions",)),
    ("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations",
     "mutatingwebhookconfiguration", "MutatingWebhookConfiguration", False, (),
     ("api-extensions",)),
    ("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies",
     "validatingadmissionpolicy", "ValidatingAdmissionPolicy", False, (), ("api-extensions",)),
    ("admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings",
     "validatingadmissionpolicybinding", "ValidatingAdmissionPolicyBinding", False, (),
     ("api-extensions",)),
    ("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations",
     "validatingwebhookconfiguration", "ValidatingWebhookConfiguration", False, (),
     ("api-extensions",)),
    ("apiextensions.k8s.io", "v1", "customresourcedefinitions", "customresourcedefinition",
     "CustomResourceDefinition", False, ("crd", "crds"), ("api-extensions",)),
    ("scheduling.k8s.io", "v1", "priorityclasses", "priorityclass", "PriorityClass", False,
     ("pc",), ()),
    ("node.k8s.io", "v1", "runtimeclasses", "runtimeclass", "RuntimeClass", False, (), ()),
    ("discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", True, (),
     ()),
    ("resource.k8s.io", "v1", "deviceclasses", "deviceclass", "DeviceClass", False, (), ()),
    ("resource.k8s.io", "v1", "resourceclaims", "resourceclaim", "ResourceClaim", True, (),
     ()),
    ("resource.k8s.io", "v1", "resourceclaimtemplates", "resourceclaimtemplate",
     "ResourceClaimTemplate", True, (), ()),
    ("resource.k8s.io", "v1", "resourceslices", "resourceslice", "ResourceSlice", False, (),
     ()),
    ("flowcontrol.apiserver.k8s.io", "v1", "flowschemas", "flowschema", "FlowSchema", False,
     (), ()),
    ("flowcontrol.apiserver.k8s.io", "v1", "prioritylevelconfigurations",
     "prioritylevelconfiguration", "PriorityLevelConfiguration", False, (), ()),
)


def _normalize_untyped(rtype: ResourceType, body: dict[str, Any], obj: dict[str, Any]
                       ) -> None:
    """Keep every field as sent (no schema), as long as it is JSON."""
    for name, value in body.items():
        if name in ("kind", "apiVersion", "metadata"):
            continue
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise invalid(rtype.kind, obj["metadata"]["name"], name,
                          "must be a JSON value") from None
        obj[name] = value


#: what kube-apiserver v1.36.2 stores these as (etcd-layout.json ``storage``), when it
#: is not the version served: their discovery ``storageVersionHash`` is of this one
_STORED_AS: dict[tuple[str, str, str], tuple[str, str, str]] = {
    ("events.k8s.io", "v1", "events"): ("", "v1", "Event"),
    ("autoscaling", "v1", "horizontalpodautoscalers"):
        ("autoscaling", "v2", "HorizontalPodAutoscaler"),
    ("admissionregistration.k8s.io", "v1", "mutatingadmissionpolicies"):
        ("admissionregistration.k8s.io", "v1beta1", "MutatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "v1", "mutatingadmissionpolicybindings"):
        ("admissionregistration.k8s.io", "v1beta1", "MutatingAdmissionPolicyBinding"),
    ("apiextensions.k8s.io", "v1", "customresourcedefinitions"):
        ("apiextensions.k8s.io", "v1beta1", "CustomResourceDefinition"),
}


def _untyped(row: tuple[str, str, str, str, str, bool, tuple[str, ...], tuple[str, ...]]
             ) -> ResourceType:
    group, version, plural, singular, kind, namespaced, short_names, categories = row
    return ResourceType(group, version, plural, singular, kind, None, _normalize_untyped,
                        columns=(NAME_COLUMN, AGE_COLUMN), short_names=short_names,
                        namespaced=namespaced, categories=categories,
                        storage_gvk=_STORED_AS.get((group, version, plural)))


#: the untyped kinds, by (group, plural)
UNTYPED: dict[tuple[str, str], ResourceType] = {
    (row[0], row[2]): _untyped(row) for row in _ROWS
}

#: versions served besides the preferred one (same objects, same etcd prefix)
OLDER_VERSIONS: dict[tuple[str, str], tuple[ResourceType, ...]] = {
    ("autoscaling", "horizontalpodautoscalers"): (_untyped(
        ("autoscaling", "v1", "horizontalpodautoscalers", "horizontalpodautoscaler",
         "HorizontalPodAutoscaler", True, ("hpa",), ("all",))),),
}
