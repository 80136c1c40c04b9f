"""Resource name resolution against a discovery document."""

from __future__ import annotations

from typing import Any

import pytest

from secretkit.errors import KubeError, UsageError
from secretkit.kube.discovery import ApiResource, discover, resolve

DOCS: dict[str, Any] = {
    "/api": {"versions": ["v1"]},
    "/api/v1": {
        "resources": [
            {"name": "secrets", "kind": "Secret", "namespaced": True,
             "verbs": ["create", "get", "list", "update", "delete"]},
            {"name": "configmaps", "kind": "ConfigMap", "namespaced": True,
             "verbs": ["get", "list", "update"]},
            {"name": "pods/status", "kind": "Pod", "namespaced": True,
             "verbs": ["get", "update"]},
            {"name": "bindings", "kind": "Binding", "namespaced": True, "verbs": ["create"]},
        ]
    },
    "/apis": {
        "groups": [
            {"name": "apps", "preferredVersion": {"version": "v1"}},
            {"name": "example.com", "preferredVersion": {"version": "v1beta1"}},
            {"name": "broken.example.com", "preferredVersion": {"version": "v1"}},
            {"name": "events.k8s.io", "preferredVersion": {"version": "v1"}},
        ]
    },
    "/apis/apps/v1": {
        "resources": [
            {"name": "deployments", "kind": "Deployment", "namespaced": True,
             "verbs": ["list", "update", "get"]}
        ]
    },
    "/apis/example.com/v1beta1": {
        "resources": [
            {"name": "widgets", "kind": "Widget", "namespaced": False,
             "verbs": ["list", "update", "get"]}
        ]
    },
    "/apis/events.k8s.io/v1": {
        "resources": [{"name": "events", "kind": "Event", "namespaced": True,
                       "verbs": ["list", "update"]}]
    },
}


class Docs:
    def get_json(self, path: str) -> Any:
        if path not in DOCS:
            raise KubeError("503", where=path)  # an unavailable aggregated API
        return DOCS[path]


def test_discover_keeps_listable_updatable_top_level_resources() -> None:
    found = {r.qualified for r in discover(Docs())}
    assert found == {"secrets", "configmaps", "deployments.apps", "widgets.example.com"}


def test_resolve_exact_and_group_names_with_versions() -> None:
    got = resolve(["secrets", "deployments.apps", "widgets.example.com"], discover(Docs()))
    assert [(r.qualified, r.api_version) for r in got] == [
        ("secrets", "v1"),
        ("deployments.apps", "apps/v1"),
        ("widgets.example.com", "example.com/v1beta1"),
    ]
    assert got[2] == ApiResource("example.com", "widgets", "v1beta1", "Widget", False)


def test_resolve_wildcards() -> None:
    available = discover(Docs())
    assert {r.qualified for r in resolve(["*."], available)} == {"secrets", "configmaps"}
    assert [r.qualified for r in resolve(["*.apps"], available)] == ["deployments.apps"]
    assert len(resolve(["*.*"], available)) == 4
    assert resolve(["*.nothing.io"], available) == []


def test_resolve_deduplicates() -> None:
    got = resolve(["secrets", "*.", "secrets"], discover(Docs()))
    assert [r.qualified for r in got] == ["secrets", "configmaps"]


def test_unknown_names_are_a_usage_error_naming_them() -> None:
    with pytest.raises(UsageError) as info:
        resolve(["secrets", "gizmos.example.com", "Nope"], discover(Docs()))
    assert "gizmos.example.com" in info.value.what
    assert "Nope" in info.value.what


def test_missing_list_collects_unknown_names_instead_of_raising() -> None:
    missing: list[str] = []
    got = resolve(["secrets", "gizmos.example.com"], discover(Docs()), missing=missing)
    assert [r.qualified for r in got] == ["secrets"]
    assert missing == ["gizmos.example.com"]
