"""Discovery documents: /version, /api, /api/v1, /apis and a minimal OpenAPI v3.

Only the legacy (non-aggregated) discovery format is served: kubectl asks for the
aggregated ``apidiscovery.k8s.io/v2`` form first and falls back to this when the
response's content type is plain ``application/json``. The OpenAPI v3 document
lists just enough (PATCH/PUT/POST operations with ``fieldValidation``) for kubectl
to use server-side field validation instead of downloading full schemas.
"""

from __future__ import annotations

import json
from typing import Any

from secretkit import __version__
from secretkit.formats.protowire import encode_len_field
from secretkit.sandbox.apiserver.resources import STORED

#: the Kubernetes minor version the stand-in imitates
KUBE_MINOR = "31"


def version_info() -> dict[str, Any]:
    """The /version document."""
    return {
        "major": "1",
        "minor": KUBE_MINOR,
        "gitVersion": f"v1.{KUBE_MINOR}.0-secretkit-sandbox.{__version__}",
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


def api_group_list() -> dict[str, Any]:
    """The /apis document: no API groups beyond the core group."""
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}


def api_resource_list() -> dict[str, Any]:
    """The /api/v1 document (APIResourceList)."""
    verbs = ["create", "delete", "get", "list", "patch", "update"]
    resources: list[dict[str, Any]] = [
        {
            "name": "namespaces",
            "singularName": "namespace",
            "namespaced": False,
            "kind": "Namespace",
            "verbs": ["get", "list"],
            "shortNames": ["ns"],
        }
    ]
    for rtype in STORED.values():
        entry: dict[str, Any] = {
            "name": rtype.plural,
            "singularName": rtype.singular,
            "namespaced": True,
            "kind": rtype.kind,
            "verbs": verbs,
            "storageVersionHash": "",
        }
        if rtype.short_names:
            entry["shortNames"] = list(rtype.short_names)
        resources.append(entry)
    return {"kind": "APIResourceList", "groupVersion": "v1", "resources": resources}


#: the media type of protobuf OpenAPI v2 (what kubectl asks /openapi/v2 for)
OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def openapi_v2(accept: str) -> tuple[bytes, str]:
    """GET /openapi/v2: a document with no definitions, as protobuf or JSON.

    kubectl validates objects client-side (e.g. every item of a ``List`` piped
    into ``kubectl replace -f -``) against these definitions and skips kinds it
    does not find, so an empty document means "no client-side schema checks".
    """
    title = f"Kubernetes (secretkit sandbox stand-in) v1.{KUBE_MINOR}"
    if "protobuf" in accept:
        # gnostic openapi_v2.Document{swagger=1: "2.0", info=2: Info{title=1, version=2}}
        version = f"v1.{KUBE_MINOR}".encode()
        info = encode_len_field(1, title.encode()) + encode_len_field(2, version)
        return encode_len_field(1, b"2.0") + encode_len_field(2, info), OPENAPI_V2_PROTOBUF
    doc = {"swagger": "2.0", "info": {"title": title, "version": f"v1.{KUBE_MINOR}"},
           "paths": {}, "definitions": {}}
    return json.dumps(doc).encode(), "application/json"


def openapi_v3_root() -> dict[str, Any]:
    """GET /openapi/v3: one group-version document, ``api/v1``."""
    return {"paths": {"api/v1": {"serverRelativeURL": f"/openapi/v3/api/v1?hash={__version__}"}}}


def openapi_v3_core() -> dict[str, Any]:
    """GET /openapi/v3/api/v1: operations with ``fieldValidation`` for each stored kind."""
    field_validation = {
        "name": "fieldValidation",
        "in": "query",
        "description": "Ignore, Warn or Strict unknown/duplicate field handling.",
        "schema": {"type": "string", "uniqueItems": True},
    }
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for rtype in STORED.values():
        gvk = {"group": "", "version": "v1", "kind": rtype.kind}

        def op(action: str, gvk: dict[str, str] = gvk) -> dict[str, Any]:
            return {
                "parameters": [field_validation],
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
            }

        paths[f"/api/v1/namespaces/{{namespace}}/{rtype.plural}"] = {"post": op("post")}
        paths[f"/api/v1/namespaces/{{namespace}}/{rtype.plural}/{{name}}"] = {
            "put": op("put"),
            "patch": op("patch"),
        }
        schemas[f"io.k8s.api.core.v1.{rtype.kind}"] = {
            "type": "object",
            "x-kubernetes-group-version-kind": [gvk],
            "x-kubernetes-preserve-unknown-fields": True,
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (secretkit sandbox stand-in)", "version": f"v1.{KUBE_MINOR}"},
        "paths": paths,
        "components": {"schemas": schemas},
    }
