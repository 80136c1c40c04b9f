"""Discovery documents in the shapes kube-apiserver v1.36 serves (captured in
``tests/data/real-apiserver/discovery/``), listing only what the stand-in serves.

* ``/api``, ``/api/v1``, ``/apis``, ``/apis/<group>``, ``/apis/<group>/<version>``:
  the legacy documents (``APIVersions``, ``APIResourceList``, ``APIGroupList``,
  ``APIGroup``);
* ``/api`` and ``/apis`` with ``Accept: application/json;g=apidiscovery.k8s.io;v=v2;
  as=APIGroupDiscoveryList``: aggregated discovery (what kubectl asks for first);
* ``/version``; a minimal OpenAPI v2/v3 so that kubectl validates on the server.

Each stored kind's entry is the real one (same verbs, short names, categories, storage
version hash); tests compare them with the captured files. Subresources (``status``,
``scale``, ...) are not served, so not listed. Namespaces are listed with
``get``/``list`` only: the stand-in derives them from stored objects.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from secretkit import __version__
from secretkit.core.formats.protowire import encode_len_field
from secretkit.sandbox.apiserver.kinds import STORED, served_groups
from secretkit.sandbox.apiserver.resources import ResourceType

#: the Kubernetes version whose discovery shapes the stand-in serves (the captured one)
KUBE_MAJOR, KUBE_MINOR, KUBE_PATCH = "1", "36", "2"
#: what every stored built-in kind allows (the captured discovery's verbs)
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
NAMESPACE_VERBS = ["get", "list"]
AGGREGATED_TYPE = "application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList"


def version_info() -> dict[str, Any]:
    """The /version document (the v1.36 shape, saying what the server really is)."""
    return {
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "emulationMajor": KUBE_MAJOR,
        "emulationMinor": KUBE_MINOR,
        "minCompatibilityMajor": KUBE_MAJOR,
        "minCompatibilityMinor": str(int(KUBE_MINOR) - 1),
        "gitVersion": f"v{KUBE_MAJOR}.{KUBE_MINOR}.{KUBE_PATCH}-secretkit-sandbox.{__version__}",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "n/a (secretkit sandbox stand-in)",
        "compiler": "python",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> dict[str, Any]:
    """The /api document (APIVersions)."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _legacy_entry(rtype: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": rtype.plural,
        "singularName": rtype.singular,
        "namespaced": rtype.namespaced,
        "kind": rtype.kind,
        "verbs": list(VERBS),
    }
    if rtype.short_names:
        entry["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        entry["categories"] = list(rtype.categories)
    entry["storageVersionHash"] = rtype.storage_version_hash
    return entry


_NAMESPACES_LEGACY = {
    "name": "namespaces", "singularName": "namespace", "namespaced": False,
    "kind": "Namespace", "verbs": NAMESPACE_VERBS, "shortNames": ["ns"],
    "storageVersionHash": "Q3oi5N2YM8M=",
}


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    """``/api/v1`` or ``/apis/<group>/<version>`` (APIResourceList); None if not served."""
    kinds = [r for r in served_groups().get(group, []) if r.version == version]
    if not kinds and not (group == "" and version == "v1"):
        return None
    resources = [_legacy_entry(r) for r in kinds]
    if group == "":
        resources.append(dict(_NAMESPACES_LEGACY))
        resources.sort(key=lambda e: str(e["name"]))
        return {"kind": "APIResourceList", "groupVersion": version, "resources": resources}
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}", "resources": resources}


def _group(name: str, kinds: list[ResourceType]) -> dict[str, Any]:
    versions = [{"groupVersion": f"{name}/{v}", "version": v}
                for v in dict.fromkeys(r.version for r in kinds)]
    return {"name": name, "versions": versions, "preferredVersion": versions[0]}


def api_group_list() -> dict[str, Any]:
    """The /apis document (APIGroupList): the served groups beyond core."""
    groups = [_group(name, kinds) for name, kinds in served_groups().items() if name]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(name: str) -> dict[str, Any] | None:
    """``/apis/<group>`` (APIGroup), None if the group is not served."""
    kinds = served_groups().get(name)
    if not name or not kinds:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, kinds)}


# -- aggregated discovery (apidiscovery.k8s.io/v2) -----------------------------------------
def _aggregated_entry(rtype: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": rtype.plural,
        "responseKind": {"group": "", "version": "", "kind": rtype.kind},
        "scope": "Namespaced" if rtype.namespaced else "Cluster",
        "singularResource": rtype.singular,
        "verbs": list(VERBS),
    }
    if rtype.short_names:
        entry["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        entry["categories"] = list(rtype.categories)
    return entry


_NAMESPACES_AGGREGATED = {
    "resource": "namespaces", "responseKind": {"group": "", "version": "", "kind": "Namespace"},
    "scope": "Cluster", "singularResource": "namespace", "verbs": NAMESPACE_VERBS,
    "shortNames": ["ns"],
}


def _aggregated_versions(kinds: list[ResourceType], core: bool) -> list[dict[str, Any]]:
    versions = []
    for version in dict.fromkeys(r.version for r in kinds):
        entries = [_aggregated_entry(r) for r in kinds if r.version == version]
        if core:
            entries.append(dict(_NAMESPACES_AGGREGATED))
            entries.sort(key=lambda e: str(e["resource"]))
        versions.append({"version": version, "resources": entries, "freshness": "Current"})
    return versions


def aggregated(path: str, version: str) -> tuple[bytes, dict[str, str]]:
    """``/api`` or ``/apis`` as an APIGroupDiscoveryList: body and response headers."""
    groups = served_groups()
    if path == "/api":
        items: list[dict[str, Any]] = [
            {"metadata": {}, "versions": _aggregated_versions(groups.get("", []), True)}]
    else:
        items = [{"metadata": {"name": name}, "versions": _aggregated_versions(kinds, False)}
                 for name, kinds in groups.items() if name]
    doc = {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}",
           "metadata": {}, "items": items}
    body = json.dumps(doc, separators=(",", ":")).encode()
    headers = {
        "Content-Type": AGGREGATED_TYPE.format(v=version),
        "Cache-Control": "public",
        "Vary": "Accept",
        "Etag": '"' + hashlib.sha512(body).hexdigest().upper() + '"',
    }
    return body, headers


# -- OpenAPI (just enough for kubectl) -----------------------------------------------------
#: the media type of protobuf OpenAPI v2 (what kubectl asks /openapi/v2 for)
OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def openapi_v2(accept: str) -> tuple[bytes, str]:
    """GET /openapi/v2: a document with no definitions, as protobuf or JSON.

    kubectl validates objects client-side (e.g. every item of a ``List`` piped
    into ``kubectl replace -f -``) against these definitions and skips kinds it
    does not find, so an empty document means "no client-side schema checks".
    """
    title = f"Kubernetes (secretkit sandbox stand-in) v{KUBE_MAJOR}.{KUBE_MINOR}"
    version = f"v{KUBE_MAJOR}.{KUBE_MINOR}"
    if "protobuf" in accept:
        # gnostic openapi_v2.Document{swagger=1: "2.0", info=2: Info{title=1, version=2}}
        info = encode_len_field(1, title.encode()) + encode_len_field(2, version.encode())
        return encode_len_field(1, b"2.0") + encode_len_field(2, info), OPENAPI_V2_PROTOBUF
    doc = {"swagger": "2.0", "info": {"title": title, "version": version},
           "paths": {}, "definitions": {}}
    return json.dumps(doc).encode(), "application/json"


def _openapi_v3_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def openapi_v3_root() -> dict[str, Any]:
    """GET /openapi/v3: one document per served group-version."""
    paths: dict[str, Any] = {
        _openapi_v3_path(r.group, r.version): {
            "serverRelativeURL": f"/openapi/v3/{_openapi_v3_path(r.group, r.version)}"
                                 f"?hash={__version__}"}
        for r in STORED.values()
    }
    return {"paths": paths}


def openapi_v3(group: str, version: str) -> dict[str, Any] | None:
    """One group-version's operations with ``fieldValidation`` (None if not served)."""
    kinds = [r for r in STORED.values() if r.group == group and r.version == version]
    if not kinds:
        return None
    field_validation = {
        "name": "fieldValidation",
        "in": "query",
        "description": "Ignore, Warn or Strict unknown/duplicate field handling.",
        "schema": {"type": "string", "uniqueItems": True},
    }
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    for rtype in kinds:
        gvk = {"group": group, "version": version, "kind": rtype.kind}

        def op(action: str, gvk: dict[str, str] = gvk) -> dict[str, Any]:
            return {
                "parameters": [field_validation],
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
            }

        collection = (f"{base}/namespaces/{{namespace}}/{rtype.plural}" if rtype.namespaced
                      else f"{base}/{rtype.plural}")
        paths[collection] = {"post": op("post")}
        paths[f"{collection}/{{name}}"] = {
            "put": op("put"),
            "patch": op("patch"),
        }
        schema_group = "core" if not group else group.split(".")[0]
        schemas[f"io.k8s.api.{schema_group}.{version}.{rtype.kind}"] = {
            "type": "object",
            "x-kubernetes-group-version-kind": [gvk],
            "x-kubernetes-preserve-unknown-fields": True,
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (secretkit sandbox stand-in)",
                 "version": f"v{KUBE_MAJOR}.{KUBE_MINOR}"},
        "paths": paths,
        "components": {"schemas": schemas},
    }
