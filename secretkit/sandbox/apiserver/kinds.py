"""The kinds the stand-in types, one table row each: Secrets, ConfigMaps, Leases and
ControllerRevisions, plus the v1 Endpoints it writes for itself (internal keys); and
:data:`STORED`, every kind it serves (the others untyped, from :mod:`.generic`).

Adding a kind is a message (field numbers from its ``generated.proto``), a
``normalize`` hook for its own fields, optionally an update check, and its columns.
Discovery, routing, storage, lists, watches and tables then work unchanged.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from secretkit.core.layout import BUILTIN_RESOURCES
from secretkit.sandbox.apiserver.generic import OLDER_VERSIONS, UNTYPED
from secretkit.sandbox.apiserver.resources import (
    AGE_COLUMN,
    NAME_COLUMN,
    Column,
    ResourceType,
    b64_map,
    str_map,
)
from secretkit.sandbox.apiserver.schema import (
    OBJECT_META,
    Field,
    Kind,
    Message,
    RawJSON,
    parse_time,
)
from secretkit.sandbox.apiserver.status import ApiError, invalid


def _invalid(rtype: ResourceType, name: str, field: str, message: str) -> ApiError:
    return invalid(rtype.kind, name, field, message, group=rtype.group)


S, INT, BOOL, M = Kind.STRING, Kind.INT, Kind.BOOL, Kind.MESSAGE
META = Field(1, "metadata", M, OBJECT_META)

# -- core/v1 Secret ------------------------------------------------------------------------
SECRET: Message = (
    META, Field(2, "data", Kind.MAP_BYTES), Field(3, "type", S),
    Field(4, "stringData", Kind.MAP_STRING), Field(5, "immutable", BOOL, pointer=True),
)


def _immutable(rtype: ResourceType, body: dict[str, Any], obj: dict[str, Any]) -> None:
    if body.get("immutable") is not None:
        obj["immutable"] = bool(body["immutable"])


def _normalize_secret(rtype: ResourceType, body: dict[str, Any], obj: dict[str, Any]) -> None:
    name = obj["metadata"]["name"]
    data = b64_map(body.get("data"), rtype.kind, name, "data")
    # the apiserver merges stringData into data before storing
    for key, text in str_map(body.get("stringData"), rtype.kind, name, "stringData").items():
        data[key] = base64.b64encode(text.encode()).decode()
    if data:
        obj["data"] = data
    obj["type"] = body.get("type") or "Opaque"
    _immutable(rtype, body, obj)


def _check_data_immutable(rtype: ResourceType, old: dict[str, Any], new: dict[str, Any],
                          fields: tuple[str, ...]) -> None:
    if not old.get("immutable"):
        return
    name = old["metadata"]["name"]
    for field in fields:
        if old.get(field) != new.get(field):
            raise _invalid(rtype, name, field, "field is immutable when `immutable` is set")
    if not new.get("immutable"):
        raise _invalid(rtype, name, "immutable", "field is immutable when `immutable` is set")


def _check_secret(rtype: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> None:
    if old.get("type", "Opaque") != new.get("type", "Opaque"):
        raise _invalid(rtype, old["metadata"]["name"], "type", "field is immutable")
    _check_data_immutable(rtype, old, new, ("data", "type"))


SECRETS = ResourceType(
    "", "v1", "secrets", "secret", "Secret", SECRET, _normalize_secret,
    columns=(NAME_COLUMN,
             Column("Type", "string", "Type of the secret.", lambda o: o.get("type", "")),
             Column("Data", "string", "Number of items in the secret.",
                    lambda o: len(o.get("data") or {})),
             AGE_COLUMN),
    check_update=_check_secret,
)

# -- core/v1 ConfigMap ---------------------------------------------------------------------
CONFIG_MAP: Message = (
    META, Field(2, "data", Kind.MAP_STRING), Field(3, "binaryData", Kind.MAP_BYTES),
    Field(4, "immutable", BOOL, pointer=True),
)


def _normalize_configmap(rtype: ResourceType, body: dict[str, Any], obj: dict[str, Any]
                         ) -> None:
    name = obj["metadata"]["name"]
    data = str_map(body.get("data"), rtype.kind, name, "data")
    binary = b64_map(body.get("binaryData"), rtype.kind, name, "binaryData")
    for key in sorted(set(data) & set(binary)):
        raise _invalid(rtype, name, f"binaryData[{key}]", "duplicate of key in data")
    if data:
        obj["data"] = data
    if binary:
        obj["binaryData"] = binary
    _immutable(rtype, body, obj)


CONFIGMAPS = ResourceType(
    "", "v1", "configmaps", "configmap", "ConfigMap", CONFIG_MAP, _normalize_configmap,
    columns=(NAME_COLUMN,
             Column("Data", "string", "Number of items in the config map.",
                    lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
             AGE_COLUMN),
    check_update=lambda r, old, new: _check_data_immutable(r, old, new, ("data", "binaryData")),
    short_names=("cm",),
)

# -- coordination.k8s.io/v1 Lease ----------------------------------------------------------
LEASE_SPEC: Message = (
    Field(1, "holderIdentity", S, pointer=True),
    Field(2, "leaseDurationSeconds", INT, pointer=True),
    Field(3, "acquireTime", Kind.MICROTIME, pointer=True),
    Field(4, "renewTime", Kind.MICROTIME, pointer=True),
    Field(5, "leaseTransitions", INT, pointer=True),
    Field(6, "strategy", S, pointer=True),
    Field(7, "preferredHolder", S, pointer=True),
)
LEASE: Message = (META, Field(2, "spec", M, LEASE_SPEC))
_LEASE_INTS = ("leaseDurationSeconds", "leaseTransitions")
_LEASE_TIMES = ("acquireTime", "renewTime")


def _normalize_lease(rtype: ResourceType, body: dict[str, Any], obj: dict[str, Any]) -> None:
    name = obj["metadata"]["name"]
    spec = body.get("spec") or {}
    if not isinstance(spec, dict):
        raise _invalid(rtype, name, "spec", "must be an object")
    out: dict[str, Any] = {}
    for f in LEASE_SPEC:
        value = spec.get(f.name)
        if value is None:
            continue
        path = f"spec.{f.name}"
        if f.name in _LEASE_INTS:
            if not isinstance(value, int) or isinstance(value, bool):
                raise _invalid(rtype, name, path, "must be an integer")
            if f.name == "leaseDurationSeconds" and value <= 0:
                raise _invalid(rtype, name, path, "must be greater than 0")
            if value < 0:
                raise _invalid(rtype, name, path, "must be greater than or "
                              "equal to 0")
        elif not isinstance(value, str):
            raise _invalid(rtype, name, path, "must be a string")
        elif f.name in _LEASE_TIMES:
            try:
                parse_time(value, micro=True)
            except Exception:
                raise _invalid(rtype, name, path,
                              "must be an RFC 3339 time with microseconds") from None
        out[f.name] = value
    obj["spec"] = out


LEASES = ResourceType(
    "coordination.k8s.io", "v1", "leases", "lease", "Lease", LEASE, _normalize_lease,
    columns=(NAME_COLUMN,
             Column("Holder", "string", "The holder of the lease.",
                    lambda o: (o.get("spec") or {}).get("holderIdentity", "")),
             AGE_COLUMN),
)

# -- apps/v1 ControllerRevision ------------------------------------------------------------
CONTROLLER_REVISION: Message = (
    META, Field(2, "data", Kind.RAW), Field(3, "revision", INT, keep=True),
)


def _normalize_revision(rtype: ResourceType, body: dict[str, Any], obj: dict[str, Any]
                        ) -> None:
    name = obj["metadata"]["name"]
    data = body.get("data")
    revision = body.get("revision", 0)
    if not isinstance(revision, int) or isinstance(revision, bool) or revision < 0:
        raise _invalid(rtype, name, "revision", "must be greater than or equal "
                      "to 0")
    if data is not None:
        # kept as the exact bytes sent (see ApiApp: the request body's raw member)
        obj["data"] = data if isinstance(data, RawJSON) else RawJSON(
            _compact_python(data))
    obj["revision"] = revision


def _compact_python(value: Any) -> bytes:
    # what Go's encoding/json writes for a decoded value: compact, HTML characters escaped
    from secretkit.sandbox.apiserver.jsonwire import go_compact

    return go_compact(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _check_revision(rtype: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> None:
    # apps validation: ValidateImmutableField(newHistory.Data, oldHistory.Data) is a
    # semantic DeepEqual of RawExtension, i.e. of its Raw bytes
    if old.get("data") != new.get("data"):
        raise _invalid(rtype, old["metadata"]["name"], "data",
                      "field is immutable")


def _revision_controller(obj: dict[str, Any]) -> str:
    for ref in obj.get("metadata", {}).get("ownerReferences") or ():
        if ref.get("controller"):
            group = str(ref.get("apiVersion", "")).rpartition("/")[0]
            kind = str(ref.get("kind", "")).lower()
            return f"{kind}.{group}/{ref.get('name')}" if group else f"{kind}/{ref.get('name')}"
    return "<none>"


CONTROLLERREVISIONS = ResourceType(
    "apps", "v1", "controllerrevisions", "controllerrevision", "ControllerRevision",
    CONTROLLER_REVISION, _normalize_revision,
    columns=(NAME_COLUMN,
             Column("Controller", "string", "Controller of the object.", _revision_controller),
             Column("Revision", "integer", "Revision indicates the revision of the state "
                    "represented by Data.", lambda o: o.get("revision", 0)),
             AGE_COLUMN),
    check_update=_check_revision,
)

#: the kinds typed here, by (group, plural)
TYPED: dict[tuple[str, str], ResourceType] = {
    (r.group, r.plural): r for r in (SECRETS, CONFIGMAPS, CONTROLLERREVISIONS, LEASES)
}


def _stored() -> dict[tuple[str, str, str], ResourceType]:
    # every resource of the layout table but namespaces (derived from stored objects),
    # typed where this module types it, in kube-apiserver's discovery order
    out: dict[tuple[str, str, str], ResourceType] = {}
    for known in BUILTIN_RESOURCES:
        rtype = TYPED.get((known.group, known.resource)) or UNTYPED.get(
            (known.group, known.resource))
        if rtype is None:
            continue
        for served in (rtype, *OLDER_VERSIONS.get((rtype.group, rtype.plural), ())):
            out[(served.group, served.version, served.plural)] = served
    return out


#: every stored kind, by (group, version, plural), groups in kube-apiserver's order
STORED: dict[tuple[str, str, str], ResourceType] = _stored()


def served_groups() -> dict[str, list[ResourceType]]:
    """The stored kinds by API group (``""`` is core), in table order."""
    groups: dict[str, list[ResourceType]] = {}
    for rtype in STORED.values():
        groups.setdefault(rtype.group, []).append(rtype)
    return groups


# -- core/v1 Endpoints (written by the stand-in itself, never served) ----------------------
ENDPOINT_ADDRESS: Message = (
    Field(1, "ip", S), Field(3, "hostname", S), Field(4, "nodeName", S, pointer=True),
)
ENDPOINT_PORT: Message = (
    Field(1, "name", S), Field(2, "port", INT), Field(3, "protocol", S),
    Field(4, "appProtocol", S, pointer=True),
)
ENDPOINT_SUBSET: Message = (
    Field(1, "addresses", M, ENDPOINT_ADDRESS, repeated=True),
    Field(2, "notReadyAddresses", M, ENDPOINT_ADDRESS, repeated=True),
    Field(3, "ports", M, ENDPOINT_PORT, repeated=True),
)
ENDPOINTS: Message = (META, Field(2, "subsets", M, ENDPOINT_SUBSET, repeated=True))
