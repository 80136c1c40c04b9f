"""What a served resource is, and the request-body rules every kind shares.

A :class:`ResourceType` is one row of the table in :mod:`.kinds`: URL and discovery
names, its protobuf message (:mod:`.schema`), the hooks that validate its own fields
on create/update, and its ``kubectl get`` columns. This module holds the generic part
of the apiserver's create/update strategies: names, ``metadata`` normalization,
system fields, ``resourceVersion`` handling, as far as a rehearsal cluster needs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets as _random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from secretkit.sandbox.apiserver.schema import Kind, Message
from secretkit.sandbox.apiserver.status import ApiError, bad_request, invalid

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
# generateName suffixes use the apiserver's alphabet (no vowels, no confusable digits)
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

#: copies and checks the kind's own fields from a request body into the new object
Normalize = Callable[["ResourceType", dict[str, Any], dict[str, Any]], None]
#: checks an update against the stored object (immutable fields); raises ApiError
UpdateCheck = Callable[["ResourceType", dict[str, Any], dict[str, Any]], None]


@dataclass(frozen=True)
class Column:
    """One ``kubectl get`` column (``meta.k8s.io/v1`` Table) and how to fill it."""

    name: str
    type: str
    description: str
    cell: Callable[[dict[str, Any]], Any]
    format: str = ""


@dataclass(frozen=True)
class ResourceType:
    """One served resource: URL/discovery names, message, hooks and table columns.

    ``message`` None: objects are stored as JSON and served in JSON only, as
    kube-apiserver does for APIServices, CRDs and custom resources (see :mod:`.generic`).
    """

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    message: Message | None
    normalize: Normalize
    columns: tuple[Column, ...]
    check_update: UpdateCheck | None = None
    short_names: tuple[str, ...] = ()
    namespaced: bool = True
    categories: tuple[str, ...] = ()
    #: (group, version, kind) kube-apiserver stores objects as, when not the served one
    storage_gvk: tuple[str, str, str] | None = None

    @property
    def protobuf(self) -> bool:
        """Whether objects are stored (and may be served) as protobuf."""
        return self.message is not None

    @property
    def raw_fields(self) -> frozenset[str]:
        """Top-level RawExtension fields: kept as the bytes sent, compared byte for byte."""
        return frozenset(f.name for f in self.message or () if f.kind is Kind.RAW)

    @property
    def api_version(self) -> str:
        """``v1`` for the core group, ``<group>/<version>`` otherwise."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        """The kind of a list of this resource, e.g. ``SecretList``."""
        return self.kind + "List"

    @property
    def qualified(self) -> str:
        """``secrets`` for the core group, ``<plural>.<group>`` otherwise."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def storage_version_hash(self) -> str:
        """Discovery's ``storageVersionHash``: sha256 of the storage ``group/version/kind``,
        8 bytes."""
        group, version, kind = self.storage_gvk or (self.group, self.version, self.kind)
        digest = hashlib.sha256(f"{group}/{version}/{kind}".encode()).digest()
        return base64.b64encode(digest[:8]).decode()


def now_rfc3339() -> str:
    """The current UTC time as Kubernetes writes timestamps (second precision, ``Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    """The current UTC time as a ``metav1.MicroTime`` (microseconds, ``Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def validate_namespace(namespace: str) -> None:
    """Reject a namespace that is not a DNS label."""
    if len(namespace) > 63 or not _DNS_LABEL.match(namespace):
        raise invalid("Namespace", namespace, "metadata.name", "a lowercase RFC 1123 label must "
                      "consist of lower case alphanumeric characters or '-'")


# -- map fields ----------------------------------------------------------------------------
def b64_map(value: Any, kind: str, name: str, field: str) -> dict[str, str]:
    """A map of config keys to base64 text (Secret ``data``, ConfigMap ``binaryData``)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(kind, name, field, "must be a map of strings")
    out: dict[str, str] = {}
    for key, item in value.items():
        check_key(kind, name, f"{field}[{key}]", key)
        if not isinstance(item, str):
            raise invalid(kind, name, f"{field}[{key}]", "must be a base64 string")
        try:
            base64.b64decode(item, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise bad_request(f"{kind} in version \"v1\" cannot be handled as a {kind}: "
                              f"illegal base64 data in {field}[{key}]") from exc
        out[key] = item
    return out


def str_map(value: Any, kind: str, name: str, field: str, *, keys: bool = True
            ) -> dict[str, str]:
    """A map of strings; with ``keys`` every key must be a valid config key."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise invalid(kind, name, field, "must be a map of strings")
    if keys:
        for key in value:
            check_key(kind, name, f"{field}[{key}]", key)
    return dict(value)


def check_key(kind: str, name: str, field: str, key: Any) -> None:
    """Reject a data key that is not ``[-._a-zA-Z0-9]+`` of at most 253 characters."""
    if not isinstance(key, str) or not key or len(key) > 253 or not _CONFIG_KEY.match(key):
        raise invalid(kind, name, field, "a valid config key must consist of alphanumeric "
                      "characters, '-', '_' or '.'")


# -- create / update -----------------------------------------------------------------------
def _metadata(rtype: ResourceType, namespace: str | None, meta: dict[str, Any],
              url_name: str | None) -> dict[str, Any]:
    name = meta.get("name") or ""
    generate = meta.get("generateName") or ""
    if url_name is not None and name != url_name:
        raise bad_request(f"the name of the object ({name}) does not match the name on the "
                          f"URL ({url_name})")
    if not name and generate:
        name = generate + "".join(_random.choice(_SUFFIX_ALPHABET) for _ in range(5))
    if not name:
        raise invalid(rtype.kind, "", "metadata.name", "name or generateName is required")
    if not rtype.protobuf:
        # untyped kinds: upstream's rules differ per kind (RBAC takes "system:basic-user",
        # APIServices "v1."): only what every kind refuses, a name that is no path segment
        if len(name) > 253 or name in (".", "..") or "/" in name or "%" in name:
            raise invalid(rtype.kind, name, "metadata.name", "may not be '.' or '..' and "
                          "may not contain '/' or '%'")
    elif len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise invalid(rtype.kind, name, "metadata.name", "a lowercase RFC 1123 subdomain "
                      "must consist of lower case alphanumeric characters, '-' or '.'")
    body_ns = meta.get("namespace")
    if body_ns and body_ns != namespace:
        raise bad_request("the namespace of the provided object does not match the "
                          "namespace sent on the request")
    out: dict[str, Any] = {"name": name}
    if generate:
        out["generateName"] = generate
    if namespace is not None:
        out["namespace"] = namespace
    for field in ("uid", "creationTimestamp"):
        if meta.get(field):
            out[field] = meta[field]
    for field in ("labels", "annotations"):
        values = str_map(meta.get(field), rtype.kind, name, f"metadata.{field}", keys=False)
        if values:
            out[field] = values
    if meta.get("finalizers"):
        finalizers = meta["finalizers"]
        if not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers):
            raise invalid(rtype.kind, name, "metadata.finalizers", "must be a list of strings")
        out["finalizers"] = list(finalizers)
    if meta.get("ownerReferences"):
        out["ownerReferences"] = _owner_references(rtype, name, meta["ownerReferences"])
    return out


_OWNER_STRINGS = ("apiVersion", "kind", "name", "uid")
_OWNER_FLAGS = ("controller", "blockOwnerDeletion")


def _owner_references(rtype: ResourceType, name: str, value: Any) -> list[dict[str, Any]]:
    """``metadata.ownerReferences`` as upstream validates them: four non-empty strings,
    two optional booleans (a bad one would break every metadata answer listing it)."""
    if not isinstance(value, list):
        raise invalid(rtype.kind, name, "metadata.ownerReferences", "must be a list")
    out = []
    for index, ref in enumerate(value):
        field = f"metadata.ownerReferences[{index}]"
        if not isinstance(ref, dict):
            raise invalid(rtype.kind, name, field, "must be an object")
        for key in _OWNER_STRINGS:
            if not isinstance(ref.get(key), str) or not ref[key]:
                raise invalid(rtype.kind, name, f"{field}.{key}", "Required value")
        for key in _OWNER_FLAGS:
            if ref.get(key) is not None and not isinstance(ref[key], bool):
                raise invalid(rtype.kind, name, f"{field}.{key}", "must be a boolean")
        out.append({k: ref[k] for k in (*_OWNER_STRINGS, *_OWNER_FLAGS) if ref.get(k) is not None})
    return out


def prepare_object(
    rtype: ResourceType, namespace: str | None, body: Any, *, url_name: str | None = None
) -> dict[str, Any]:
    """Validate and normalize a request body into the object that will be stored.

    Drops what the apiserver never stores (``resourceVersion`` is kept separately by
    the caller), checks names, then lets the kind's own hook copy and check its
    fields. Raises :class:`ApiError` (400/422) on bad input.
    """
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    kind = body.get("kind", rtype.kind)
    if kind != rtype.kind or body.get("apiVersion", rtype.api_version) != rtype.api_version:
        raise bad_request(
            f"the body of the request was in an unknown format: expected {rtype.api_version} "
            f"{rtype.kind}"
        )
    meta = body.get("metadata") or {}
    if not isinstance(meta, dict):
        raise bad_request("metadata must be an object")
    obj: dict[str, Any] = {"kind": rtype.kind, "apiVersion": rtype.api_version,
                           "metadata": _metadata(rtype, namespace, meta, url_name)}
    rtype.normalize(rtype, body, obj)
    return obj


def fill_system_fields(obj: dict[str, Any], uid: str) -> None:
    """Set ``uid`` and ``creationTimestamp`` on create (the apiserver ignores client values)."""
    obj["metadata"]["uid"] = uid
    obj["metadata"]["creationTimestamp"] = now_rfc3339()
    obj["metadata"].pop("managedFields", None)


def check_update(rtype: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Carry system fields over from ``old``, then the kind's own immutability rules."""
    for field in ("uid", "creationTimestamp", "managedFields", "generation"):
        if field in old["metadata"]:
            new["metadata"][field] = old["metadata"][field]
        else:
            new["metadata"].pop(field, None)
    if rtype.check_update is not None:
        rtype.check_update(rtype, old, new)


# -- kubectl get ---------------------------------------------------------------------------
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


NAME_COLUMN = Column("Name", "string", "Name must be unique within a namespace.",
                     lambda o: o.get("metadata", {}).get("name"), "name")
AGE_COLUMN = Column("Age", "string", "CreationTimestamp of the object.",
                    lambda o: human_age(o.get("metadata", {}).get("creationTimestamp")))


def table_columns(columns: tuple[Column, ...]) -> list[dict[str, Any]]:
    """Table ``columnDefinitions`` for ``columns``."""
    return [{"name": c.name, "type": c.type, "format": c.format, "description": c.description,
             "priority": 0} for c in columns]


def table_cells(columns: tuple[Column, ...], obj: dict[str, Any]) -> list[Any]:
    """One Table row's cells for ``obj``."""
    return [c.cell(obj) for c in columns]


def ensure_api_error(exc: Exception) -> ApiError:
    """Wrap an unexpected exception in a secret-free 500 (the type name only)."""
    if isinstance(exc, ApiError):
        return exc
    return ApiError(500, "InternalError", f"Internal error occurred: {type(exc).__name__}")
