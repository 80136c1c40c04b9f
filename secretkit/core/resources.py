"""Resource names operators type (``secrets``, ``deployments.apps``): known or a typo?

A check that scans the wrong resource proves nothing: ``audit --resources secret``
used to count 0 objects and pass. Every command that takes a resource list checks
it with :func:`check_resource_names`, which knows the resources kube-apiserver
itself serves (:func:`builtin_resources`) and suggests the nearest one ("did you
mean 'secrets'?"). A name in a group kube-apiserver does not own (a CRD such as
``widgets.example.com``, an aggregated API) cannot be judged offline and is accepted.

Pure: no I/O. The list of built-in resources is the layout table's
(:mod:`secretkit.core.layout`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from functools import cache

from secretkit.core.layout import BUILTIN_GROUPS, BUILTIN_RESOURCES
from secretkit.errors import UsageError

#: API groups kube-apiserver serves itself that store nothing an operator would
#: name (reviews, webhooks' token requests); a name in them is unknown too
_BUILTIN_GROUPS_WITHOUT_STORAGE = frozenset(
    {
        "authentication.k8s.io",
        "authorization.k8s.io",
        "extensions",
    }
)


@cache
def builtin_resources() -> frozenset[tuple[str, str]]:
    """``(group, resource)`` for every resource kube-apiserver serves from etcd.

    From the one layout table (:mod:`secretkit.core.layout`, read off a real
    kube-apiserver).
    """
    return frozenset((r.group, r.resource) for r in BUILTIN_RESOURCES)


def builtin_groups() -> frozenset[str]:
    """Every API group kube-apiserver serves itself (``""`` is core)."""
    return BUILTIN_GROUPS | _BUILTIN_GROUPS_WITHOUT_STORAGE


def is_served(group: str, resource: str) -> bool | None:
    """True/False for kube-apiserver's own groups; None when offline cannot tell (CRDs).

    Wildcards (``*``) are judged by their group: ``*.apps`` is served, ``*.nope.io``
    unknown (None).
    """
    if group == "*":
        return True
    if group not in builtin_groups():
        return None
    if resource == "*":
        return group in BUILTIN_GROUPS
    return (group, resource) in builtin_resources()


def _spelled(group: str, resource: str) -> str:
    return f"{resource}.{group}" if group else resource


def suggestions(name: str, *, limit: int = 3) -> list[str]:
    """The built-in resource names closest to ``name`` (for "did you mean")."""
    spelled = sorted(
        {_spelled(g, r) for g, r in builtin_resources()} | {r for _, r in builtin_resources()}
    )
    close = difflib.get_close_matches(name.lower(), spelled, n=limit + 1, cutoff=0.6)
    return [c for c in close if c != name][:limit]


def unknown_resource_hint(name: str) -> str:
    """``did you mean 'secrets'?`` (or where the list of names comes from)."""
    close = suggestions(name)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    return (
        "use the plural resource name kubectl api-resources shows, with its group "
        "unless it is core (secrets, configmaps, deployments.apps)"
    )


def check_resource_names(
    names: Iterable[str], *, where: str, wildcards: bool = False, bare_means_core: bool = False
) -> tuple[str, ...]:
    """``names`` stripped, empty entries dropped; an unknown or malformed one is a UsageError.

    ``wildcards`` allows ``*.<group>``, ``*.`` (core) and ``*.*`` (config generation);
    without it a wildcard is refused with a pointer to ``--all-resources``. A bare
    name (``deployments``) names a core resource with ``bare_means_core`` (as in an
    EncryptionConfiguration), else a built-in resource of any group (as the audit
    matches it); a name in a group kube-apiserver does not own is accepted as a
    custom resource.
    """
    out: list[str] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        resource, dot, group = name.partition(".")
        if "*" in name:
            if not wildcards:
                raise UsageError(
                    f"wildcard resource {name!r} is not supported here",
                    where=where,
                    hint="list the resources by name (every resource at once has its own option)",
                )
            if resource != "*" or not dot or ("*" in group and group != "*"):
                raise UsageError(
                    f"invalid wildcard {name!r}",
                    where=where,
                    hint="use '*.' (every core resource), '*.<group>' or '*.*'",
                )
            served = is_served(group, "*")
            if served is False:
                raise UsageError(
                    f"API group {group!r} stores no resources", where=where, hint="remove it"
                )
            out.append(name)
            continue
        if name != name.lower() or not resource or (dot and not group):
            raise UsageError(
                f"unknown resource {name!r}", where=where, hint=unknown_resource_hint(name)
            )
        if dot:  # "secrets." is not a name
            served = is_served(group, resource)
        elif bare_means_core:
            served = ("", resource) in builtin_resources()
        else:
            served = any(r == resource for _, r in builtin_resources())
        if served is False:
            hint = unknown_resource_hint(name)
            if not dot and not suggestions(name):
                hint = "a custom resource needs its group, e.g. widgets.example.com"
            raise UsageError(f"unknown resource {name!r}", where=where, hint=hint)
        out.append(name)
    return tuple(out)


def split_resource_flags(values: Iterable[str]) -> list[str]:
    """``--resources a,b --resources c`` -> ``[a, b, c]`` (commas and repeats both work)."""
    return [part for value in values for part in value.split(",")]
