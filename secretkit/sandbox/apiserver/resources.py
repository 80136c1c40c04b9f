"""The resources the stand-in serves: Secrets and ConfigMaps (plus a namespace list).

Objects are handled as their Kubernetes JSON form (``dict``); :mod:`.codec` turns
that into the protobuf the apiserver stores. This module validates and normalizes
incoming JSON the way the apiserver's create/update strategies do, as far as a
rehearsal cluster needs.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets as _random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from secretkit.sandbox.apiserver.status import ApiError, bad_request, invalid

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
# generateName suffixes use the apiserver's alphabet (no vowels, no confusable digits)
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


@dataclass(frozen=True)
class ResourceType:
    """One served resource: URL plural, kind, etcd path segment and discovery data."""

    plural: str
    singular: str
    kind: str
    short_names: tuple[str, ...] = ()

    @property
    def list_kind(self) -> str:
        """The kind of a list of this resource, e.g. ``SecretList``."""
        return self.kind + "List"


SECRETS = ResourceType("secrets", "secret", "Secret")
CONFIGMAPS = ResourceType("configmaps", "configmap", "ConfigMap", ("cm",))
#: resources stored in etcd, by URL plural
STORED: dict[str, ResourceType] = {r.plural: r for r in (SECRETS, CONFIGMAPS)}


def now_rfc3339() -> str:
    """The current UTC time as Kubernetes writes timestamps (second precision, ``Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def validate_namespace(namespace: str) -> None:
    """Reject a namespace that is not a DNS label."""
    if len(namespace) > 63 or not _DNS_LABEL.match(namespace):
        raise invalid("Namespace", namespace, "metadata.name", "a lowercase RFC 1123 label must "
                      "consist of lower case alphanumeric characters or '-'")


def _b64_map(value: Any, kind: str, name: str, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(kind, name, field, "must be a map of strings")
    out: dict[str, str] = {}
    for key, item in value.items():
        _check_key(kind, name, f"{field}[{key}]", key)
        if not isinstance(item, str):
            raise invalid(kind, name, f"{field}[{key}]", "must be a base64 string")
        try:
            base64.b64decode(item, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise bad_request(f"{kind} in version \"v1\" cannot be handled as a {kind}: "
                              f"illegal base64 data in {field}[{key}]") from exc
        out[key] = item
    return out


def _str_map(value: Any, kind: str, name: str, field: str, *, keys: bool = True) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise invalid(kind, name, field, "must be a map of strings")
    if keys:
        for key in value:
            _check_key(kind, name, f"{field}[{key}]", key)
    return dict(value)


def _check_key(kind: str, name: str, field: str, key: Any) -> None:
    if not isinstance(key, str) or not key or len(key) > 253 or not _CONFIG_KEY.match(key):
        raise invalid(kind, name, field, "a valid config key must consist of alphanumeric "
                      "characters, '-', '_' or '.'")


def prepare_object(
    rtype: ResourceType, namespace: str, body: Any, *, url_name: str | None = None
) -> dict[str, Any]:
    """Validate and normalize a request body into the object that will be stored.

    Drops what the apiserver never stores (``resourceVersion`` is kept separately
    by the caller, ``stringData`` is merged into ``data``), fills ``type``, checks
    names and keys. Raises :class:`ApiError` (400/422) on bad input.
    """
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    kind = body.get("kind", rtype.kind)
    if kind != rtype.kind or body.get("apiVersion", "v1") != "v1":
        raise bad_request(
            f"the body of the request was in an unknown format: expected v1 {rtype.kind}"
        )
    meta = body.get("metadata") or {}
    if not isinstance(meta, dict):
        raise bad_request("metadata must be an object")
    name = meta.get("name") or ""
    generate = meta.get("generateName") or ""
    if url_name is not None and name != url_name:
        raise bad_request(f"the name of the object ({name}) does not match the name on the "
                          f"URL ({url_name})")
    if not name and generate:
        name = generate + "".join(_random.choice(_SUFFIX_ALPHABET) for _ in range(5))
    if not name:
        raise invalid(rtype.kind, "", "metadata.name", "name or generateName is required")
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise invalid(rtype.kind, name, "metadata.name", "a lowercase RFC 1123 subdomain "
                      "must consist of lower case alphanumeric characters, '-' or '.'")
    body_ns = meta.get("namespace")
    if body_ns and body_ns != namespace:
        raise bad_request("the namespace of the provided object does not match the "
                          "namespace sent on the request")
    out_meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if generate:
        out_meta["generateName"] = generate
    for field in ("uid", "creationTimestamp"):
        if meta.get(field):
            out_meta[field] = meta[field]
    for field in ("labels", "annotations"):
        values = _str_map(meta.get(field), rtype.kind, name, f"metadata.{field}", keys=False)
        if values:
            out_meta[field] = values
    if meta.get("finalizers"):
        out_meta["finalizers"] = [str(f) for f in meta["finalizers"]]
    if meta.get("ownerReferences"):
        out_meta["ownerReferences"] = list(meta["ownerReferences"])

    obj: dict[str, Any] = {"kind": rtype.kind, "apiVersion": "v1", "metadata": out_meta}
    if rtype is SECRETS:
        data = _b64_map(body.get("data"), rtype.kind, name, "data")
        for key, text in _str_map(body.get("stringData"), rtype.kind, name, "stringData").items():
            data[key] = base64.b64encode(text.encode()).decode()
        if data:
            obj["data"] = data
        obj["type"] = body.get("type") or "Opaque"
    else:
        data_s = _str_map(body.get("data"), rtype.kind, name, "data")
        binary = _b64_map(body.get("binaryData"), rtype.kind, name, "binaryData")
        for key in set(data_s) & set(binary):
            raise invalid(rtype.kind, name, f"binaryData[{key}]", "duplicate of key in data")
        if data_s:
            obj["data"] = data_s
        if binary:
            obj["binaryData"] = binary
    if body.get("immutable") is not None:
        obj["immutable"] = bool(body["immutable"])
    return obj


def fill_system_fields(obj: dict[str, Any], uid: str) -> None:
    """Set ``uid`` and ``creationTimestamp`` on create (the apiserver ignores client values)."""
    obj["metadata"]["uid"] = uid
    obj["metadata"]["creationTimestamp"] = now_rfc3339()


def check_update(rtype: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Carry system fields over from ``old`` and enforce immutability like the apiserver."""
    for field in ("uid", "creationTimestamp"):
        if field in old["metadata"]:
            new["metadata"][field] = old["metadata"][field]
        else:
            new["metadata"].pop(field, None)
    name = old["metadata"]["name"]
    if rtype is SECRETS and old.get("type", "Opaque") != new.get("type", "Opaque"):
        raise invalid(rtype.kind, name, "type", "field is immutable")
    if old.get("immutable"):
        for field in ("data", "binaryData", "type"):
            if old.get(field) != new.get(field):
                raise invalid(rtype.kind, name, field, "field is immutable when `immutable` is set")
        if not new.get("immutable"):
            raise invalid(rtype.kind, name, "immutable", "field is immutable when `immutable` "
                          "is set")


def human_age(timestamp: str | None, now: datetime | None = None) -> str:
    """Age column text like kubectl's (``45s``, ``12m``, ``3h``, ``5d``)."""
    if not timestamp:
        return "<unknown>"
    try:
        created = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<unknown>"
    seconds = int(((now or datetime.now(UTC)) - created).total_seconds())
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


def table_columns(plural: str) -> list[dict[str, Any]]:
    """The Table column definitions kubectl prints for ``plural``."""

    def col(name: str, typ: str, desc: str, fmt: str = "") -> dict[str, Any]:
        return {"name": name, "type": typ, "format": fmt, "description": desc, "priority": 0}

    name = col("Name", "string", "Name must be unique within a namespace.", "name")
    age = col("Age", "string", "CreationTimestamp of the object.", "")
    if plural == "secrets":
        return [name, col("Type", "string", "Type of the secret."),
                col("Data", "string", "Number of items in the secret."), age]
    if plural == "configmaps":
        return [name, col("Data", "string", "Number of items in the config map."), age]
    return [name, col("Status", "string", "The phase of the namespace."), age]


def table_cells(plural: str, obj: dict[str, Any]) -> list[Any]:
    """One Table row's cells for ``obj`` (same columns as :func:`table_columns`)."""
    meta = obj.get("metadata", {})
    age = human_age(meta.get("creationTimestamp"))
    if plural == "secrets":
        return [meta.get("name"), obj.get("type", ""), len(obj.get("data") or {}), age]
    if plural == "configmaps":
        count = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
        return [meta.get("name"), count, age]
    return [meta.get("name"), obj.get("status", {}).get("phase", "Active"), age]


def ensure_api_error(exc: Exception) -> ApiError:
    """Wrap an unexpected exception in a secret-free 500 (the type name only)."""
    if isinstance(exc, ApiError):
        return exc
    return ApiError(500, "InternalError", f"Internal error occurred: {type(exc).__name__}")
