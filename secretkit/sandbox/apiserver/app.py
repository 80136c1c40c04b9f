"""Request routing of the API stand-in, independent of the HTTP server plumbing."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from secretkit.errors import SecretkitError
from secretkit.formats import decode_unknown
from secretkit.sandbox.apiserver import codec, discovery, patch
from secretkit.sandbox.apiserver.encryption import EncryptionState
from secretkit.sandbox.apiserver.resources import (
    STORED,
    ResourceType,
    ensure_api_error,
    prepare_object,
    table_cells,
    table_columns,
    validate_namespace,
)
from secretkit.sandbox.apiserver.selectors import field_selector, label_selector
from secretkit.sandbox.apiserver.status import ApiError, bad_request, not_found, status_body
from secretkit.sandbox.apiserver.store import ObjectStore
from secretkit.sandbox.apiserver.watch import watch_events

log = logging.getLogger(__name__)

JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
#: paths served without a token (like the apiserver's default RBAC for health)
_PUBLIC = frozenset({"/healthz", "/livez", "/readyz", "/version"})


@dataclass(frozen=True)
class Response:
    """An HTTP response: status code, body bytes and content type."""

    code: int
    body: bytes
    content_type: str = JSON
    #: a streamed body (watch): sent with chunked transfer encoding instead of ``body``
    stream: Iterator[bytes] | None = None


def _json(code: int, doc: Any) -> Response:
    return Response(code, json.dumps(doc, separators=(",", ":")).encode())


def _status(err: ApiError) -> Response:
    return _json(err.code, err.body())


class ApiApp:
    """Routes Kubernetes API requests for Secrets/ConfigMaps to an :class:`ObjectStore`."""

    def __init__(
        self,
        store: ObjectStore,
        encryption: EncryptionState,
        tokens: frozenset[str],
        *,
        apiserver_id: str,
        server_address: str,
    ) -> None:
        self.store = store
        self.encryption = encryption
        self._tokens = tokens
        self.apiserver_id = apiserver_id
        self.server_address = server_address

    # -- entry ---------------------------------------------------------------------------
    def handle(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Response:
        """Answer one request; every failure becomes a ``Status`` body."""
        try:
            if path not in _PUBLIC and not self._authorized(headers.get("authorization", "")):
                raise ApiError(401, "Unauthorized", "Unauthorized")
            return self._route(method, path.rstrip("/") or "/", query, headers, body)
        except ApiError as err:
            return _status(err)
        except Exception as exc:
            # never echo the exception text: it may carry object data
            log.exception("internal error serving %s %s", method, path)
            return _status(ensure_api_error(exc))

    def _authorized(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        return any(hmac.compare_digest(token.strip(), t) for t in self._tokens)

    # -- routing -------------------------------------------------------------------------
    def _route(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Response:
        if path in ("/healthz", "/livez"):
            return Response(200, b"ok", "text/plain; charset=utf-8")
        if path == "/readyz":
            if not self.encryption.kms_healthy:
                return Response(500, b"[-]kms-providers failed: kms v2 plugin not healthy\n",
                                "text/plain; charset=utf-8")
            return Response(200, b"ok", "text/plain; charset=utf-8")
        if path == "/metrics":
            text = self.encryption.metrics(self.apiserver_id)
            return Response(200, text.encode(), "text/plain; version=0.0.4; charset=utf-8")
        if method != "GET" and not path.startswith("/api/v1/"):
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on {path}")
        if path == "/version":
            return _json(200, discovery.version_info())
        if path == "/api":
            return _json(200, discovery.api_versions(self.server_address))
        if path == "/apis":
            return _json(200, discovery.api_group_list())
        if path == "/api/v1":
            return _json(200, discovery.api_resource_list())
        if path == "/openapi/v2":
            doc, ctype = discovery.openapi_v2(headers.get("accept", ""))
            return Response(200, doc, ctype)
        if path == "/openapi/v3":
            return _json(200, discovery.openapi_v3_root())
        if path == "/openapi/v3/api/v1":
            return _json(200, discovery.openapi_v3_core())
        parts = path.split("/")[3:] if path.startswith("/api/v1/") else None
        if not parts:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return self._resource(method, parts, query, headers, body)

    def _resource(
        self,
        method: str,
        parts: list[str],
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Response:
        as_table = "as=Table" in headers.get("accept", "")
        watching = query.get("watch") in ("1", "true")
        if watching and (method != "GET" or len(parts) in (2, 4) or parts == ["namespaces"]):
            raise ApiError(405, "MethodNotAllowed", "watch is only served on collections")
        # /api/v1/<plural> (all namespaces)
        if len(parts) == 1 and parts[0] in STORED:
            self._only(method, "GET")
            if watching:
                return self._watch(STORED[parts[0]], None, query, as_table)
            return self._list(STORED[parts[0]], None, query, as_table)
        if parts[0] != "namespaces":
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if len(parts) == 1:
            self._only(method, "GET")
            return self._namespaces(as_table)
        namespace = parts[1]
        validate_namespace(namespace)
        if len(parts) == 2:
            self._only(method, "GET")
            return _json(200, self._namespace(namespace))
        rtype = STORED.get(parts[2])
        if rtype is None or len(parts) > 4:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        dry_run = bool(query.get("dryRun"))
        if len(parts) == 3:
            if method == "GET" and watching:
                return self._watch(rtype, namespace, query, as_table)
            if method == "GET":
                return self._list(rtype, namespace, query, as_table)
            self._only(method, "POST")
            obj = prepare_object(rtype, namespace, self._object_body(rtype, headers, body))
            return _json(201, self.store.create(rtype, obj, dry_run=dry_run))
        name = parts[3]
        if method == "GET":
            obj = self.store.get(rtype, namespace, name)
            if as_table:
                return _json(200, self._table(rtype.plural, [obj], str(
                    obj["metadata"]["resourceVersion"]), None))
            return _json(200, obj)
        if method == "PUT":
            doc = self._object_body(rtype, headers, body)
            precondition = (doc.get("metadata") or {}).get("resourceVersion") or None
            obj = prepare_object(rtype, namespace, doc, url_name=name)
            return _json(200, self.store.update(rtype, obj, precondition=precondition or None,
                                                dry_run=dry_run))
        if method == "PATCH":
            return self._patch(rtype, namespace, name, headers, body, dry_run)
        if method == "DELETE":
            precondition = None
            if body.strip():
                options = self._body(body)
                precondition = (options.get("preconditions") or {}).get("resourceVersion")
            obj = self.store.delete(rtype, namespace, name, precondition=precondition,
                                    dry_run=dry_run)
            return _json(200, status_body(200, "", "", details={
                "name": name, "kind": rtype.plural, "uid": obj["metadata"].get("uid", "")}))
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on {rtype.plural}")

    @staticmethod
    def _only(method: str, allowed: str) -> None:
        if method != allowed:
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here")

    @staticmethod
    def _object_body(rtype: ResourceType, headers: Mapping[str, str], body: bytes
                     ) -> dict[str, Any]:
        """Decode a JSON or protobuf (``application/vnd.kubernetes.protobuf``) object body."""
        ctype = headers.get("content-type", "").split(";", 1)[0].strip()
        if ctype != PROTOBUF:
            return ApiApp._body(body)
        try:
            unknown = decode_unknown(body)
            if unknown.kind != rtype.kind or unknown.api_version != "v1":
                raise bad_request(f"expected a v1 {rtype.kind}, got {unknown.api_version} "
                                  f"{unknown.kind}")
            return codec.decode_object(rtype, unknown.raw)
        except SecretkitError as exc:
            raise bad_request(f"the protobuf body cannot be decoded: {exc.what}") from exc

    @staticmethod
    def _body(body: bytes) -> dict[str, Any]:
        try:
            doc = json.loads(body or b"{}")
        except ValueError as exc:
            raise bad_request("the request body is not valid JSON") from exc
        if not isinstance(doc, dict):
            raise bad_request("the request body must be a JSON object")
        return doc

    # -- handlers ------------------------------------------------------------------------
    def _list(
        self, rtype: ResourceType, namespace: str | None, query: Mapping[str, str], as_table: bool
    ) -> Response:
        try:
            limit = int(query.get("limit") or 0)
        except ValueError as exc:
            raise bad_request("limit must be an integer") from exc
        labels = label_selector(query.get("labelSelector"))
        fields = field_selector(query.get("fieldSelector"))

        def accept(obj: dict[str, Any]) -> bool:
            return (labels is None or labels(obj)) and (fields is None or fields(obj))

        result = self.store.list(
            rtype, namespace, limit=max(limit, 0), continue_token=query.get("continue") or None,
            accept=accept if labels or fields else None,
        )
        if as_table:
            return _json(200, self._table(rtype.plural, result.items,
                                          str(result.resource_version), result.continue_token))
        meta: dict[str, Any] = {"resourceVersion": str(result.resource_version)}
        if result.continue_token:
            meta["continue"] = result.continue_token
        items = []
        for obj in result.items:
            item = dict(obj)
            item.pop("kind", None)
            item.pop("apiVersion", None)
            items.append(item)
        return _json(200, {"kind": rtype.list_kind, "apiVersion": "v1", "metadata": meta,
                           "items": items})

    def _watch(
        self, rtype: ResourceType, namespace: str | None, query: Mapping[str, str], as_table: bool
    ) -> Response:
        labels = label_selector(query.get("labelSelector"))
        fields = field_selector(query.get("fieldSelector"))

        def accept(obj: dict[str, Any]) -> bool:
            return (labels is None or labels(obj)) and (fields is None or fields(obj))

        try:
            timeout = float(query.get("timeoutSeconds") or 1800)
        except ValueError as exc:
            raise bad_request("timeoutSeconds must be a number") from exc
        events = watch_events(self.store, rtype, namespace,
                              resource_version=query.get("resourceVersion"), timeout=timeout,
                              accept=accept if labels or fields else None,
                              initial_events_bookmark=query.get("sendInitialEvents") == "true")

        def lines() -> Iterator[bytes]:
            for event in events:
                if event is None:
                    yield b""  # idle tick: lets the server check the client is still there
                    continue
                obj = event.object
                if as_table and event.type not in ("ERROR", "BOOKMARK"):
                    rv = str(obj["metadata"].get("resourceVersion", ""))
                    obj = self._table(rtype.plural, [obj], rv, None)
                yield json.dumps({"type": event.type, "object": obj},
                                 separators=(",", ":")).encode() + b"\n"

        return Response(200, b"", JSON, stream=lines())

    @staticmethod
    def _table(plural: str, objs: list[dict[str, Any]], rv: str, token: str | None
               ) -> dict[str, Any]:
        meta: dict[str, Any] = {"resourceVersion": rv}
        if token:
            meta["continue"] = token
        rows = [
            {
                "cells": table_cells(plural, obj),
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                           "metadata": obj["metadata"]},
            }
            for obj in objs
        ]
        return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                "columnDefinitions": table_columns(plural), "rows": rows}

    def _namespace(self, name: str) -> dict[str, Any]:
        return {"kind": "Namespace", "apiVersion": "v1",
                "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}

    def _namespaces(self, as_table: bool) -> Response:
        names = self.store.namespaces(tuple(STORED.values()))
        objs = [self._namespace(n) for n in names]
        if as_table:
            return _json(200, self._table("namespaces", objs, "0", None))
        for obj in objs:
            obj.pop("kind")
            obj.pop("apiVersion")
        return _json(200, {"kind": "NamespaceList", "apiVersion": "v1",
                           "metadata": {"resourceVersion": "0"}, "items": objs})

    def _patch(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        headers: Mapping[str, str],
        body: bytes,
        dry_run: bool,
    ) -> Response:
        ctype = headers.get("content-type", "").split(";", 1)[0].strip()
        try:
            doc = json.loads(body or b"null")
        except ValueError as exc:
            raise bad_request("the patch is not valid JSON") from exc
        if ctype not in (patch.MERGE, patch.STRATEGIC, patch.JSON_PATCH):
            raise ApiError(415, "UnsupportedMediaType",
                           f"the body of the request was in an unknown format - accepted media "
                           f"types include: {patch.JSON_PATCH}, {patch.MERGE}, {patch.STRATEGIC}")
        def mutate(current: dict[str, Any]) -> dict[str, Any]:
            if ctype == patch.JSON_PATCH:
                patched = patch.json_patch(current, doc)
            else:
                patched = patch.merge_patch(current, doc, strategic=ctype == patch.STRATEGIC)
            if not isinstance(patched, dict):
                raise bad_request("the patch result is not an object")
            rv = (patched.get("metadata") or {}).get("resourceVersion")
            if rv and rv != current["metadata"].get("resourceVersion"):
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {rtype.plural} '
                               f'"{name}": the object has been modified; please apply your '
                               "changes to the latest version and try again")
            return prepare_object(rtype, namespace, patched, url_name=name)

        placeholder = {"metadata": {"name": name, "namespace": namespace}}
        try:
            # a resourceVersion inside the patch is checked by mutate() against the
            # object it patches, so the store needs no separate precondition
            result = self.store.update(rtype, placeholder, precondition=None,
                                       dry_run=dry_run, mutate=mutate)
        except ApiError as err:
            if err.code == 404:
                raise not_found(rtype.plural, name) from err
            raise
        return _json(200, result)
