"""PATCH bodies: JSON merge patch (RFC 7386) and strategic merge as kubectl sends it.

For the typed kinds every patched field is a map or a scalar, so a strategic merge
patch behaves like a merge patch once its ``$``-directives (``$patch``,
``$setElementOrder/...``, ``$retainKeys``) are dropped. The untyped kinds
(:mod:`.generic`) have lists merged by key (containers by name...), which needs their
schema: a strategic merge patch is refused for them (415), as kube-apiserver refuses
it for custom resources, rather than applied wrongly. JSON patch (RFC 6902) is
supported for ``add``, ``remove``, ``replace`` and ``test``.

A patch is applied inside the store's compare-and-swap loop (:func:`mutation`), as
kube-apiserver applies it inside ``GuaranteedUpdate``: a concurrent write is never
lost, the patch is applied again to the newer object. An empty patch (``{}`` or
``[]``) leaves the object as it is, so only a stale value is rewritten.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from secretkit.sandbox.apiserver.jsonwire import go_compact
from secretkit.sandbox.apiserver.resources import ResourceType, prepare_object
from secretkit.sandbox.apiserver.schema import RawJSON
from secretkit.sandbox.apiserver.status import ApiError, bad_request, conflict

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def merge_patch(target: Any, patch: Any, *, strategic: bool = False) -> Any:
    """Apply an RFC 7386 merge patch (dropping ``$`` directives when ``strategic``)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if strategic and key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value, strategic=strategic)
    return result


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch(target: Any, ops: Any) -> Any:
    """Apply an RFC 6902 patch (add/remove/replace/test on object members)."""
    if not isinstance(ops, list):
        raise bad_request("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "path" not in op:
            raise bad_request("every JSON patch operation needs op and path")
        parts = _pointer(str(op["path"]))
        parent = doc
        for part in parts[:-1]:
            if not isinstance(parent, dict) or part not in parent:
                raise ApiError(422, "Invalid", f"JSON patch path {op['path']!r} does not exist")
            parent = parent[part]
        if not isinstance(parent, dict):
            raise ApiError(422, "Invalid", "JSON patch only supports object members here")
        leaf = parts[-1]
        kind = op.get("op")
        if kind in ("add", "replace"):
            if kind == "replace" and leaf not in parent:
                raise ApiError(422, "Invalid", f"JSON patch path {op['path']!r} does not exist")
            parent[leaf] = copy.deepcopy(op.get("value"))
        elif kind == "remove":
            if leaf not in parent:
                raise ApiError(422, "Invalid", f"JSON patch path {op['path']!r} does not exist")
            del parent[leaf]
        elif kind == "test":
            if parent.get(leaf) != op.get("value"):
                raise ApiError(422, "Invalid", f"JSON patch test failed at {op['path']!r}")
        else:
            raise bad_request(f"unsupported JSON patch operation {kind!r}")
    return doc


def _as_json(obj: dict[str, Any], raw_fields: set[str]) -> dict[str, Any]:
    """The object as kube-apiserver's patch handler sees it: its JSON encoding.

    Go writes a RawExtension's bytes compacted (:func:`go_compact`), so a raw member
    that was stored with whitespace comes back different: ``raw_fields`` (the members
    the patch touches) are parsed, the others stay raw but compacted.
    """
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(value, RawJSON):
            compact = RawJSON(go_compact(value.raw))
            out[key] = compact.value() if key in raw_fields else compact
        else:
            out[key] = value
    return out


def accepted_types(rtype: ResourceType) -> tuple[str, ...]:
    """The patch media types ``rtype`` takes (no strategic merge without a schema)."""
    return (JSON_PATCH, MERGE, STRATEGIC) if rtype.protobuf else (JSON_PATCH, MERGE)


def mutation(
    rtype: ResourceType, namespace: str | None, name: str, content_type: str, doc: Any
) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
    """The update a PATCH makes, for the store to apply to the current object.

    None for an empty patch of a kind without raw members: the object stays byte for
    byte what it is, as kube-apiserver's re-encoding of an unchanged object gives the
    same bytes. A kind with raw members (ControllerRevision ``data``) goes through the
    JSON round trip even then, as upstream's does, so a ``data`` stored with
    whitespace makes even an empty patch a 422.
    """
    raw_members = set(rtype.raw_fields)
    if doc == ([] if content_type == JSON_PATCH else {}) and not raw_members:
        return None
    touched = raw_members if content_type == JSON_PATCH or not isinstance(doc, dict) else (
        raw_members & set(doc))

    def mutate(current: dict[str, Any]) -> dict[str, Any]:
        base = _as_json(current, touched)
        if content_type == JSON_PATCH:
            patched = json_patch(base, doc)
        else:
            patched = merge_patch(base, doc, strategic=content_type == STRATEGIC)
        if not isinstance(patched, dict):
            raise bad_request("the patch result is not an object")
        rv = (patched.get("metadata") or {}).get("resourceVersion")
        if rv and rv != current["metadata"].get("resourceVersion"):
            raise conflict(rtype.plural, name, rtype.group)
        return prepare_object(rtype, namespace, patched, url_name=name)

    return mutate
