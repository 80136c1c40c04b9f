"""URL paths of the Kubernetes API, parsed into what a request addresses.

``/api/v1/...`` is the core group, ``/apis/<group>/<version>/...`` every other one;
below the group-version come ``<plural>`` (a collection across namespaces),
``namespaces/<ns>/<plural>`` (a namespaced collection) and ``.../<name>`` (one object).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from secretkit.sandbox.apiserver.kinds import STORED
from secretkit.sandbox.apiserver.resources import ResourceType, validate_namespace
from secretkit.sandbox.apiserver.status import ApiError


@dataclass(frozen=True)
class ResourceRoute:
    """A request for stored objects: a collection (``name`` None) or one object.

    ``namespace`` is None for a collection across all namespaces.
    """

    rtype: ResourceType
    namespace: str | None
    name: str | None

    @property
    def target(self) -> str:
        """``object`` or ``collection``: the key of the method table."""
        return "collection" if self.name is None else "object"


@dataclass(frozen=True)
class NamespaceRoute:
    """``/api/v1/namespaces`` (``name`` None) or ``/api/v1/namespaces/<name>``."""

    name: str | None


def not_found() -> ApiError:
    """The apiserver's 404 for a path it does not serve."""
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def check_path_segment(name: str) -> None:
    """Refuse a name no object can have in a URL (400).

    An escaped ``/`` (``%2F``) would otherwise reach the etcd key as an extra segment;
    kube-apiserver never addresses one object by such a name either (it routes the
    decoded ``a/b`` as a subresource, a 404).
    """
    if name in (".", ".."):
        raise ApiError(400, "BadRequest", f"name may not be {name!r}")
    for bad in ("/", "%"):
        if bad in name:
            raise ApiError(400, "BadRequest", f"name may not contain {bad!r}")


def parse(path: str) -> ResourceRoute | NamespaceRoute | None:
    """Parse a resource path; None when it is not below a group-version."""
    parts = [unquote(p) for p in path.strip("/").split("/")]
    if parts[0] == "api" and len(parts) >= 3:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if rest[0] == "namespaces" and group == "" and len(rest) <= 2:
        if len(rest) == 2:
            validate_namespace(rest[1])
        return NamespaceRoute(rest[1] if len(rest) == 2 else None)
    namespace: str | None = None
    if rest[0] == "namespaces":
        if len(rest) < 3:
            raise not_found()
        namespace, rest = rest[1], rest[2:]
        validate_namespace(namespace)
    rtype = STORED.get((group, version, rest[0]))
    if rtype is None or len(rest) > 2:
        raise not_found()
    name = rest[1] if len(rest) == 2 else None
    if name is not None:
        check_path_segment(name)
    if rtype.namespaced and namespace is None and name is not None:
        raise not_found()
    if not rtype.namespaced and namespace is not None:
        raise not_found()
    return ResourceRoute(rtype, namespace, name)
