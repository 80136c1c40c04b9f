"""Resolve resource names (``secrets``, ``deployments.apps``, ``*.example.com``) through
API discovery, like ``kubectl api-resources``.

Only resources that can be listed and updated are returned: those are the ones a
no-op update can re-encrypt. Subresources (``pods/status``) are never returned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from secretkit.errors import KubeError, UsageError

#: groups the apiserver never stores in etcd under their own name (aliases of core types)
_SKIPPED_GROUPS = frozenset({"events.k8s.io", "extensions"})


@dataclass(frozen=True, order=True)
class ApiResource:
    """One listable, updatable resource as discovery reports it (preferred version)."""

    group: str
    resource: str
    version: str
    kind: str
    namespaced: bool

    @property
    def qualified(self) -> str:
        """``secrets`` for the core group, ``<resource>.<group>`` otherwise."""
        return self.resource if not self.group else f"{self.resource}.{self.group}"

    @property
    def api_version(self) -> str:
        """The ``apiVersion`` field objects of this resource carry."""
        return self.version if not self.group else f"{self.group}/{self.version}"


class DiscoveryClient(Protocol):
    """What discovery needs from a client: GET a path that must succeed."""

    def get_json(self, path: str) -> Any:
        """Return the parsed JSON at ``path``."""
        ...


def discover(client: DiscoveryClient) -> list[ApiResource]:
    """Every listable+updatable resource of the cluster at its preferred version."""
    found: list[ApiResource] = []
    core = client.get_json("/api")
    core_versions = list(core.get("versions") or ["v1"]) if isinstance(core, dict) else ["v1"]
    found.extend(_resources_of(client, "", core_versions[0], "/api/" + core_versions[0]))
    groups = client.get_json("/apis")
    for group in (groups or {}).get("groups", []) if isinstance(groups, dict) else []:
        name = str(group.get("name", ""))
        preferred = (group.get("preferredVersion") or {}).get("version")
        if not name or not preferred or name in _SKIPPED_GROUPS:
            continue
        found.extend(_resources_of(client, name, str(preferred), f"/apis/{name}/{preferred}"))
    return sorted(set(found))


def _resources_of(
    client: DiscoveryClient, group: str, version: str, path: str
) -> list[ApiResource]:
    try:
        body = client.get_json(path)
    except KubeError:
        # an unavailable aggregated API must not hide every other resource
        return []
    out: list[ApiResource] = []
    for item in (body or {}).get("resources", []) if isinstance(body, dict) else []:
        name = str(item.get("name", ""))
        verbs = set(item.get("verbs") or [])
        if "/" in name or not {"list", "update"} <= verbs:
            continue
        out.append(
            ApiResource(
                group=group,
                resource=name,
                version=version,
                kind=str(item.get("kind", "")),
                namespaced=bool(item.get("namespaced", False)),
            )
        )
    return out


def split_name(name: str) -> tuple[str, str]:
    """``deployments.apps`` -> (``deployments``, ``apps``); ``secrets`` -> (``secrets``, ``""``)."""
    resource, _, group = name.partition(".")
    return resource, group


def resolve(
    names: Iterable[str],
    available: Iterable[ApiResource],
    *,
    missing: list[str] | None = None,
) -> list[ApiResource]:
    """Match ``names`` (exact, ``*.<group>``, ``*.`` for core, ``*.*``) against discovery.

    Unknown exact names are a :class:`UsageError` naming them, or, when a ``missing``
    list is given, appended to it and skipped. Wildcards may match nothing. The result
    keeps the order of ``names`` and has no duplicates.
    """
    pool = list(available)
    chosen: list[ApiResource] = []
    unknown: list[str] = []
    for raw in names:
        name = raw.strip().lower()
        if not name:
            continue
        resource, group = split_name(name)
        if resource == "*":
            matches = [r for r in pool if group == "*" or r.group == group]
        else:
            matches = [r for r in pool if r.resource == resource and r.group == group]
            if not matches:
                unknown.append(raw)
        for match in matches:
            if match not in chosen:
                chosen.append(match)
    if unknown and missing is not None:
        missing.extend(unknown)
    elif unknown:
        raise UsageError(
            f"unknown resource(s): {', '.join(sorted(unknown))}",
            where="--resources",
            hint="use plural names with their group, e.g. secrets, deployments.apps, "
            "widgets.example.com (see `kubectl api-resources`)",
        )
    return chosen
