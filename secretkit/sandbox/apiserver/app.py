"""Request routing of the API stand-in, independent of the HTTP server plumbing.

Two tables decide who answers: :data:`ApiApp.PATHS` for fixed paths (health,
metrics, discovery, OpenAPI) and :data:`ApiApp.METHODS` for stored objects, keyed by
``(collection|object, HTTP method)``. Answers are rendered in the form the client
negotiated (:mod:`.negotiate`): the object, ``PartialObjectMetadata[List]`` or a
``Table``, as JSON or protobuf.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from secretkit.core.formats import decode_unknown, encode_unknown
from secretkit.core.formats.protowire import encode_len_field
from secretkit.errors import SecretkitError
from secretkit.sandbox.apiserver import codec, discovery, jsonwire, patch, routes
from secretkit.sandbox.apiserver.encryption import EncryptionState
from secretkit.sandbox.apiserver.health import HealthChecks
from secretkit.sandbox.apiserver.kinds import STORED
from secretkit.sandbox.apiserver.negotiate import (
    JSON,
    PROTOBUF,
    Target,
    negotiate,
    wants_aggregated_discovery,
)
from secretkit.sandbox.apiserver.resources import (
    ResourceType,
    ensure_api_error,
    prepare_object,
    table_cells,
    table_columns,
)
from secretkit.sandbox.apiserver.routes import NamespaceRoute, ResourceRoute
from secretkit.sandbox.apiserver.schema import LIST_META, OBJECT_META, RawJSON, encode_message
from secretkit.sandbox.apiserver.selectors import field_selector, label_selector
from secretkit.sandbox.apiserver.status import ApiError, bad_request, status_body
from secretkit.sandbox.apiserver.store import ListResult, ObjectStore, Stored
from secretkit.sandbox.apiserver.watch import watch_events

log = logging.getLogger(__name__)

TEXT = "text/plain; charset=utf-8"
#: paths served without a token (kube-apiserver's system:public-info-viewer role)
_PUBLIC = frozenset({"/healthz", "/livez", "/readyz", "/version"})
_META_V1 = "meta.k8s.io/v1"


@dataclass(frozen=True)
class Response:
    """An HTTP response: status code, body bytes, content type and extra headers."""

    code: int
    body: bytes
    content_type: str = JSON
    #: a streamed body (watch): sent with chunked transfer encoding instead of ``body``
    stream: Iterator[bytes] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """One parsed request (method, path without query, query, lower-case headers, body)."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes

    @property
    def dry_run(self) -> bool:
        """``?dryRun=All``: validate and answer, store nothing."""
        return bool(self.query.get("dryRun"))


def _json(code: int, doc: Any) -> Response:
    return Response(code, jsonwire.dumps(doc))


def _status(err: ApiError) -> Response:
    return _json(err.code, err.body())


def _only(request: Request, *allowed: str) -> None:
    if request.method not in allowed:
        raise ApiError(405, "MethodNotAllowed",
                       f"{request.method} is not supported on {request.path}")


class ApiApp:
    """Routes Kubernetes API requests to an :class:`ObjectStore` and the health checks."""

    def __init__(
        self,
        store: ObjectStore,
        encryption: EncryptionState,
        tokens: frozenset[str],
        *,
        apiserver_id: str,
        server_address: str,
        health: HealthChecks | None = None,
    ) -> None:
        self.store = store
        self.encryption = encryption
        self._tokens = tokens
        self.apiserver_id = apiserver_id
        self.server_address = server_address
        self.health = health or HealthChecks(encryption)

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
            request = Request(method, path.rstrip("/") or "/", query, headers, body)
            return self._route(request)
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

    def _route(self, request: Request) -> Response:
        handler = self.PATHS.get(request.path)
        if handler is not None:
            return handler(self, request)
        head = request.path.split("/", 2)[1] if request.path.count("/") >= 1 else ""
        if head in ("healthz", "livez", "readyz"):
            _only(request, "GET", "HEAD")
            return self._health_check(request)
        if head == "openapi":
            return self._openapi(request)
        route = routes.parse(request.path)
        if route is None:
            return self._group_discovery(request)
        if isinstance(route, NamespaceRoute):
            _only(request, "GET")
            return self._namespaces(request, route)
        method = self.METHODS.get((route.target, request.method))
        if method is None or (route.namespace is None and route.rtype.namespaced
                              and request.method != "GET"):
            raise ApiError(405, "MethodNotAllowed",
                           f"{request.method} is not supported on {route.rtype.qualified}")
        return method(self, request, route)

    # -- fixed paths ---------------------------------------------------------------------
    def _health(self, request: Request) -> Response:
        endpoint = request.path.lstrip("/")
        code, text = self.health.root(endpoint, verbose="verbose" in request.query)
        return Response(code, text.encode(), TEXT)

    def _health_check(self, request: Request) -> Response:
        endpoint, _, check = request.path.lstrip("/").partition("/")
        answer = self.health.single(endpoint, check)
        if answer is None:
            return Response(404, b"404 page not found\n", TEXT)
        code, text = answer
        return Response(code, text.encode(), TEXT)

    def _metrics(self, request: Request) -> Response:
        text = self.encryption.metrics(self.apiserver_id)
        return Response(200, text.encode(), "text/plain; version=0.0.4; charset=utf-8")

    def _version(self, request: Request) -> Response:
        _only(request, "GET")
        return _json(200, discovery.version_info())

    def _api(self, request: Request) -> Response:
        _only(request, "GET")
        version = wants_aggregated_discovery(request.headers.get("accept", ""))
        if version is not None:
            body, headers = discovery.aggregated("/api", version)
            return Response(200, body, headers["Content-Type"], headers=headers)
        return _json(200, discovery.api_versions(self.server_address))

    def _apis(self, request: Request) -> Response:
        _only(request, "GET")
        version = wants_aggregated_discovery(request.headers.get("accept", ""))
        if version is not None:
            body, headers = discovery.aggregated("/apis", version)
            return Response(200, body, headers["Content-Type"], headers=headers)
        return _json(200, discovery.api_group_list())

    def _group_discovery(self, request: Request) -> Response:
        _only(request, "GET")
        parts = request.path.strip("/").split("/")
        doc: dict[str, Any] | None = None
        if parts[0] == "api" and len(parts) == 2:
            doc = discovery.resource_list("", parts[1])
        elif parts[0] == "apis" and len(parts) == 2:
            doc = discovery.api_group(parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            doc = discovery.resource_list(parts[1], parts[2])
        if doc is None:
            raise routes.not_found()
        return _json(200, doc)

    def _openapi(self, request: Request) -> Response:
        _only(request, "GET")
        parts = request.path.strip("/").split("/")
        if parts == ["openapi", "v2"]:
            doc, ctype = discovery.openapi_v2(request.headers.get("accept", ""))
            return Response(200, doc, ctype)
        if parts == ["openapi", "v3"]:
            return _json(200, discovery.openapi_v3_root())
        found: dict[str, Any] | None = None
        if parts[:3] == ["openapi", "v3", "api"] and len(parts) == 4:
            found = discovery.openapi_v3("", parts[3])
        elif parts[:3] == ["openapi", "v3", "apis"] and len(parts) == 5:
            found = discovery.openapi_v3(parts[3], parts[4])
        if found is None:
            raise routes.not_found()
        return _json(200, found)

    PATHS: ClassVar[dict[str, Callable[[ApiApp, Request], Response]]] = {
        "/healthz": _health,
        "/livez": _health,
        "/readyz": _health,
        "/metrics": _metrics,
        "/version": _version,
        "/api": _api,
        "/apis": _apis,
    }

    # -- stored objects ------------------------------------------------------------------
    def _collection_get(self, request: Request, route: ResourceRoute) -> Response:
        if request.query.get("watch") in ("1", "true"):
            return self._watch(request, route)
        return self._list(request, route)

    def _object_get(self, request: Request, route: ResourceRoute) -> Response:
        if request.query.get("watch") in ("1", "true"):
            raise ApiError(405, "MethodNotAllowed", "watch is only served on collections")
        assert route.name is not None
        target = negotiate(request.headers.get("accept", ""), is_list=False,
                           protobuf=route.rtype.protobuf)
        stored = self.store.get(route.rtype, route.namespace, route.name)
        return self._one(route.rtype, stored, target, 200)

    def _create(self, request: Request, route: ResourceRoute) -> Response:
        target = negotiate(request.headers.get("accept", ""), is_list=False,
                           protobuf=route.rtype.protobuf)
        obj = prepare_object(route.rtype, route.namespace, self._object_body(request, route))
        created = self.store.create(route.rtype, obj, dry_run=request.dry_run)
        return self._one(route.rtype, created, target, 201)

    def _replace(self, request: Request, route: ResourceRoute) -> Response:
        assert route.name is not None
        target = negotiate(request.headers.get("accept", ""), is_list=False,
                           protobuf=route.rtype.protobuf)
        doc = self._object_body(request, route)
        precondition = (doc.get("metadata") or {}).get("resourceVersion") or None
        obj = prepare_object(route.rtype, route.namespace, doc, url_name=route.name)
        stored = self.store.update(route.rtype, route.namespace, route.name, lambda _cur: obj,
                                   precondition=precondition, dry_run=request.dry_run)
        return self._one(route.rtype, stored, target, 200)

    def _patch(self, request: Request, route: ResourceRoute) -> Response:
        assert route.name is not None
        target = negotiate(request.headers.get("accept", ""), is_list=False,
                           protobuf=route.rtype.protobuf)
        ctype = request.headers.get("content-type", "").split(";", 1)[0].strip()
        accepted = patch.accepted_types(route.rtype)
        if ctype not in accepted:
            raise ApiError(415, "UnsupportedMediaType",
                           "the body of the request was in an unknown format - accepted media "
                           "types include: " + ", ".join(accepted))
        try:
            doc = json.loads(request.body or b"null")
        except ValueError as exc:
            raise bad_request("the patch is not valid JSON") from exc
        mutate = patch.mutation(route.rtype, route.namespace, route.name, ctype, doc)
        stored = self.store.update(route.rtype, route.namespace, route.name, mutate,
                                   dry_run=request.dry_run)
        return self._one(route.rtype, stored, target, 200)

    def _delete(self, request: Request, route: ResourceRoute) -> Response:
        assert route.name is not None
        precondition = None
        if request.body.strip():
            options = self._json_body(request.body)
            precondition = (options.get("preconditions") or {}).get("resourceVersion")
        stored = self.store.delete(route.rtype, route.namespace, route.name,
                                   precondition=precondition, dry_run=request.dry_run)
        return _json(200, status_body(200, "", "", details={
            "name": route.name, "group": route.rtype.group, "kind": route.rtype.plural,
            "uid": stored.metadata().get("uid", "")} if route.rtype.group else {
            "name": route.name, "kind": route.rtype.plural,
            "uid": stored.metadata().get("uid", "")}))

    def _delete_collection(self, request: Request, route: ResourceRoute) -> Response:
        result = self.store.list(route.rtype, route.namespace, accept=self._selector(request))
        deleted = []
        for stored in result.items:
            meta = stored.metadata()
            try:
                gone = self.store.delete(route.rtype, meta.get("namespace"), meta["name"],
                                         dry_run=request.dry_run)
            except ApiError as err:
                if err.code == 404:
                    continue
                raise
            deleted.append(gone)
        answer = ListResult(deleted, result.resource_version, None)
        return self._many(route.rtype, answer, Target())

    METHODS: ClassVar[dict[tuple[str, str],
                           Callable[[ApiApp, Request, ResourceRoute], Response]]] = {
        ("collection", "GET"): _collection_get,
        ("collection", "POST"): _create,
        ("collection", "DELETE"): _delete_collection,
        ("object", "GET"): _object_get,
        ("object", "PUT"): _replace,
        ("object", "PATCH"): _patch,
        ("object", "DELETE"): _delete,
    }

    # -- request bodies ------------------------------------------------------------------
    @staticmethod
    def _json_body(body: bytes) -> dict[str, Any]:
        try:
            doc = json.loads(body or b"{}")
        except ValueError as exc:
            raise bad_request("the request body is not valid JSON") from exc
        if not isinstance(doc, dict):
            raise bad_request("the request body must be a JSON object")
        return doc

    def _object_body(self, request: Request, route: ResourceRoute) -> dict[str, Any]:
        """Decode a JSON or protobuf object body; raw members stay raw bytes."""
        rtype = route.rtype
        ctype = request.headers.get("content-type", "").split(";", 1)[0].strip()
        if ctype == PROTOBUF and not rtype.protobuf:
            raise ApiError(415, "UnsupportedMediaType",
                           f"the body of the request was in an unknown format - accepted media "
                           f"types include: {JSON}, application/yaml")
        if ctype == PROTOBUF:
            try:
                unknown = decode_unknown(request.body)
                if unknown.kind != rtype.kind or unknown.api_version != rtype.api_version:
                    raise bad_request(f"expected a {rtype.api_version} {rtype.kind}, got "
                                      f"{unknown.api_version} {unknown.kind}")
                return codec.decode_object(rtype, unknown.raw)
            except SecretkitError as exc:
                raise bad_request(f"the protobuf body cannot be decoded: {exc.what}") from exc
        doc = self._json_body(request.body)
        raw_fields = sorted(rtype.raw_fields)
        if raw_fields:
            # a RawExtension keeps the bytes as sent (kube-apiserver compares them
            # byte for byte on update), not Python's re-serialization of them
            members = jsonwire.raw_members(request.body)
            for name in raw_fields:
                if name in members and members[name] != b"null":
                    doc[name] = RawJSON(members[name])
        return doc

    @staticmethod
    def _selector(request: Request) -> Callable[[Stored], bool] | None:
        labels = label_selector(request.query.get("labelSelector"))
        fields = field_selector(request.query.get("fieldSelector"))
        if labels is None and fields is None:
            return None

        def accept(stored: Stored) -> bool:
            obj = stored.object()
            return (labels is None or labels(obj)) and (fields is None or fields(obj))

        return accept

    # -- lists and watches ---------------------------------------------------------------
    def _list(self, request: Request, route: ResourceRoute) -> Response:
        target = negotiate(request.headers.get("accept", ""), is_list=True,
                           protobuf=route.rtype.protobuf)
        try:
            limit = int(request.query.get("limit") or 0)
        except ValueError as exc:
            raise bad_request("limit must be an integer") from exc
        result = self.store.list(
            route.rtype, route.namespace, limit=max(limit, 0),
            continue_token=request.query.get("continue") or None,
            accept=self._selector(request),
        )
        return self._many(route.rtype, result, target)

    def _watch(self, request: Request, route: ResourceRoute) -> Response:
        target = negotiate(request.headers.get("accept", ""), is_list=False, tables=True,
                           protobuf=route.rtype.protobuf)
        labels = label_selector(request.query.get("labelSelector"))
        fields = field_selector(request.query.get("fieldSelector"))

        def accept(obj: dict[str, Any]) -> bool:
            return (labels is None or labels(obj)) and (fields is None or fields(obj))

        try:
            timeout = float(request.query.get("timeoutSeconds") or 1800)
        except ValueError as exc:
            raise bad_request("timeoutSeconds must be a number") from exc
        rtype = route.rtype
        events = watch_events(self.store, rtype, route.namespace,
                              resource_version=request.query.get("resourceVersion"),
                              timeout=timeout,
                              accept=accept if labels or fields else None,
                              initial_events_bookmark=request.query.get(
                                  "sendInitialEvents") == "true")

        def lines() -> Iterator[bytes]:
            for event in events:
                if event is None:
                    yield b""  # idle tick: lets the server check the client is still there
                    continue
                obj: Any = event.object
                if event.type not in ("ERROR", "BOOKMARK"):
                    if target.form == "Table":
                        rv = str(obj["metadata"].get("resourceVersion", ""))
                        obj = self._table(rtype, [obj], rv, None)
                    elif target.form == "PartialObjectMetadata":
                        obj = _partial(obj["metadata"])
                yield jsonwire.dumps({"type": event.type, "object": obj}) + b"\n"

        return Response(200, b"", JSON, stream=lines())

    # -- rendering -----------------------------------------------------------------------
    def _one(self, rtype: ResourceType, item: Stored | dict[str, Any], target: Target,
             code: int) -> Response:
        if target.form == "PartialObjectMetadata":
            if target.media == PROTOBUF:
                raw = encode_len_field(1, item.metadata_raw() if isinstance(item, Stored)
                                       else encode_message(OBJECT_META, item["metadata"]))
                return Response(code, encode_unknown(_META_V1, "PartialObjectMetadata", raw),
                                target.content_type)
            meta = item.metadata() if isinstance(item, Stored) else item["metadata"]
            return Response(code, jsonwire.dumps(_partial(meta, target.version)),
                            target.content_type)
        obj = item.object() if isinstance(item, Stored) else item
        if target.form == "Table":
            rv = str(obj["metadata"].get("resourceVersion", ""))
            return Response(code, jsonwire.dumps(self._table(rtype, [obj], rv, None,
                                                             target.version)),
                            target.content_type)
        if target.media == PROTOBUF:
            return Response(code, codec.encode_stored(rtype, obj), PROTOBUF)
        return Response(code, jsonwire.dumps(obj))

    def _many(self, rtype: ResourceType, result: ListResult, target: Target) -> Response:
        rv = str(result.resource_version)
        meta: dict[str, Any] = {"resourceVersion": rv}
        if result.continue_token:
            meta["continue"] = result.continue_token
        if target.form == "Table":
            objs = [s.object() for s in result.items]
            return Response(200, jsonwire.dumps(self._table(
                rtype, objs, rv, result.continue_token, target.version)), target.content_type)
        if target.form == "PartialObjectMetadataList":
            if target.media == PROTOBUF:
                raw = encode_len_field(1, encode_message(LIST_META, meta)) + b"".join(
                    encode_len_field(2, encode_len_field(1, s.metadata_raw()))
                    for s in result.items)
                return Response(200, encode_unknown(_META_V1, "PartialObjectMetadataList",
                                                    raw), target.content_type)
            metas = [s.metadata() for s in result.items]
            doc = {"kind": "PartialObjectMetadataList",
                   "apiVersion": f"meta.k8s.io/{target.version}", "metadata": meta,
                   "items": [_partial(m, target.version) for m in metas]}
            return Response(200, jsonwire.dumps(doc), target.content_type)
        objs = [s.object() for s in result.items]
        if target.media == PROTOBUF:
            raw = encode_len_field(1, encode_message(LIST_META, meta)) + b"".join(
                encode_len_field(2, codec.encode_object(rtype, o)) for o in objs)
            return Response(200, encode_unknown(rtype.api_version, rtype.list_kind, raw),
                            PROTOBUF)
        items = []
        for obj in objs:
            item = dict(obj)
            item.pop("kind", None)
            item.pop("apiVersion", None)
            items.append(item)
        return _json(200, {"kind": rtype.list_kind, "apiVersion": rtype.api_version,
                           "metadata": meta, "items": items})

    @staticmethod
    def _table(rtype: ResourceType | None, objs: list[dict[str, Any]], rv: str,
               token: str | None, version: str = "v1") -> dict[str, Any]:
        from secretkit.sandbox.apiserver.resources import AGE_COLUMN, NAME_COLUMN, Column

        columns = rtype.columns if rtype is not None else (
            NAME_COLUMN, Column("Status", "string", "The phase of the namespace.",
                                lambda o: o.get("status", {}).get("phase", "Active")),
            AGE_COLUMN)
        meta: dict[str, Any] = {"resourceVersion": rv}
        if token:
            meta["continue"] = token
        rows = [{"cells": table_cells(columns, obj), "object": _partial(obj["metadata"])}
                for obj in objs]
        return {"kind": "Table", "apiVersion": f"meta.k8s.io/{version}", "metadata": meta,
                "columnDefinitions": table_columns(columns), "rows": rows}

    # -- namespaces (derived from stored objects) ----------------------------------------
    @staticmethod
    def _namespace(name: str) -> dict[str, Any]:
        return {"kind": "Namespace", "apiVersion": "v1",
                "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}

    def _namespaces(self, request: Request, route: NamespaceRoute) -> Response:
        accept = request.headers.get("accept", "")
        if route.name is not None:
            target = negotiate(accept, is_list=False)
            obj = self._namespace(route.name)
            if target.form == "Table":
                return _json(200, self._table(None, [obj], "0", None, target.version))
            return _json(200, obj)
        target = negotiate(accept, is_list=True)
        names = self.store.namespaces(tuple(STORED.values()))
        objs = [self._namespace(n) for n in names]
        if target.form == "Table":
            return _json(200, self._table(None, objs, "0", None, target.version))
        for obj in objs:
            obj.pop("kind")
            obj.pop("apiVersion")
        return _json(200, {"kind": "NamespaceList", "apiVersion": "v1",
                           "metadata": {"resourceVersion": "0"}, "items": objs})


def _partial(meta: dict[str, Any], version: str = "v1") -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{version}",
            "metadata": meta}
