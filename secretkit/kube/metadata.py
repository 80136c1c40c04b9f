"""Metadata-only answers of the Kubernetes API, in protobuf or JSON, read with no models.

A list asked for with ``as=PartialObjectMetadataList`` (kube-apiserver serves it for
every resource, built-in or custom) carries only each object's ``metadata``; re-
encryption needs three fields of it: namespace, name and resourceVersion. The apiserver
may answer in protobuf (``k8s\\x00`` + ``runtime.Unknown``, built-in types) or JSON,
or ignore the transformation (a server or aggregated API that cannot do it): every
form is read here, the full list included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from secretkit.core.formats import decode_unknown
from secretkit.core.formats.protowire import WIRE_LEN, WIRE_VARINT, iter_fields
from secretkit.errors import FormatError, KubeError

JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
_META = ";g=meta.k8s.io;v=v1"
#: list answers: metadata only, protobuf first (client-go's metadata client asks the same)
LIST_ACCEPT = (f"{PROTOBUF};as=PartialObjectMetadataList{_META},"
               f"{JSON};as=PartialObjectMetadataList{_META},{JSON}")
#: single-object answers (a PATCH's): metadata only
OBJECT_ACCEPT = (f"{PROTOBUF};as=PartialObjectMetadata{_META},"
                 f"{JSON};as=PartialObjectMetadata{_META},{JSON}")
#: a whole object, protobuf when the type has it (sent back unchanged by the fallback)
RAW_ACCEPT = f"{PROTOBUF},{JSON}"


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """What a list says about one object: where it is and its resourceVersion."""

    namespace: str | None
    name: str
    resource_version: str


@dataclass(frozen=True)
class MetadataPage:
    """One list page: its objects, the continue token and the items left (if told)."""

    items: list[ObjectRef]
    continue_token: str | None
    remaining: int | None


def parse_list(body: bytes, content_type: str) -> MetadataPage:
    """Read a list answer (metadata-only or full, protobuf or JSON)."""
    if content_type.startswith(PROTOBUF):
        return _protobuf_list(body)
    doc = _json(body)
    meta = doc.get("metadata") or {}
    items = [_ref(item.get("metadata") or {}) for item in doc.get("items") or ()]
    remaining = meta.get("remainingItemCount")
    return MetadataPage(items, meta.get("continue") or None,
                        remaining if isinstance(remaining, int) else None)


def parse_object(body: bytes, content_type: str) -> ObjectRef:
    """Read one object's answer (``PartialObjectMetadata`` or the object itself)."""
    if content_type.startswith(PROTOBUF):
        raw = _unknown_raw(body)
        for number, wire, value in iter_fields(raw, where="object"):
            if number == 1 and wire == WIRE_LEN and isinstance(value, memoryview):
                return _protobuf_ref(value)
        raise _bad("the object has no metadata")
    return _ref(_json(body).get("metadata") or {})


def _json(body: bytes) -> dict[str, Any]:
    import json

    try:
        doc = json.loads(body)
    except ValueError:
        raise _bad("the answer is not JSON") from None
    if not isinstance(doc, dict):
        raise _bad("the answer is not a JSON object")
    return doc


def _ref(meta: dict[str, Any]) -> ObjectRef:
    return ObjectRef(meta.get("namespace") or None, str(meta.get("name", "")),
                     str(meta.get("resourceVersion", "")))


def _unknown_raw(body: bytes) -> bytes:
    try:
        return decode_unknown(body).raw
    except FormatError as exc:
        raise _bad(f"the protobuf answer cannot be read: {exc.what}") from None


def _protobuf_ref(meta: memoryview) -> ObjectRef:
    # ObjectMeta: 1 name, 3 namespace, 6 resourceVersion (k8s.io/apimachinery generated.proto)
    name = namespace = rv = ""
    try:
        for number, wire, value in iter_fields(meta, where="ObjectMeta"):
            if wire != WIRE_LEN or not isinstance(value, memoryview):
                continue
            if number == 1:
                name = str(value, "utf-8")
            elif number == 3:
                namespace = str(value, "utf-8")
            elif number == 6:
                rv = str(value, "utf-8")
    except (FormatError, UnicodeDecodeError):
        raise _bad("an object's metadata cannot be read") from None
    return ObjectRef(namespace or None, name, rv)


def _protobuf_list(body: bytes) -> MetadataPage:
    raw = _unknown_raw(body)
    items: list[ObjectRef] = []
    token: str | None = None
    remaining: int | None = None
    try:
        for number, wire, value in iter_fields(raw, where="list"):
            if not isinstance(value, memoryview) or wire != WIRE_LEN:
                continue
            if number == 1:  # ListMeta: 2 resourceVersion, 3 continue, 4 remainingItemCount
                for field, fwire, item in iter_fields(value, where="ListMeta"):
                    if field == 3 and isinstance(item, memoryview):
                        token = str(item, "utf-8") or None
                    elif field == 4 and fwire == WIRE_VARINT and isinstance(item, int):
                        remaining = item
            elif number == 2:  # an item: PartialObjectMetadata (or the object): 1 metadata
                for field, fwire, item in iter_fields(value, where="item"):
                    if field == 1 and fwire == WIRE_LEN and isinstance(item, memoryview):
                        items.append(_protobuf_ref(item))
                        break
    except (FormatError, UnicodeDecodeError):
        raise _bad("the protobuf list cannot be read") from None
    return MetadataPage(items, token, remaining)


def _bad(what: str) -> KubeError:
    return KubeError(what, hint="the API server answered in an unexpected form; "
                     "report it with the server version")
