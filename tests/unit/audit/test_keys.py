"""Splitting etcd keys into resource, namespace and name."""

from __future__ import annotations

import pytest

from secretkit.audit.keys import range_prefix_for, resource_matches, split_etcd_key


@pytest.mark.parametrize(
    ("key", "resource", "namespace", "name"),
    [
        ("/registry/secrets/default/db", "secrets", "default", "db"),
        ("/registry/services/specs/default/kubernetes", "services", "default", "kubernetes"),
        ("/registry/services/endpoints/default/kubernetes", "endpoints", "default", "kubernetes"),
        ("/registry/minions/node-1", "nodes", None, "node-1"),
        ("/registry/namespaces/default", "namespaces", None, "default"),
        ("/registry/deployments/ns/web", "deployments.apps", "ns", "web"),
        ("/registry/example.com/widgets/ns/w1", "widgets.example.com", "ns", "w1"),
        ("/elsewhere/secrets/a/b", "<other>", None, "/elsewhere/secrets/a/b"),
    ],
)
def test_split(key: str, resource: str, namespace: str | None, name: str) -> None:
    parts = split_etcd_key(key)
    assert (parts.qualified_resource, parts.namespace, parts.name) == (resource, namespace, name)


def test_custom_prefix() -> None:
    parts = split_etcd_key("/custom/secrets/ns/a", "/custom/")
    assert (parts.resource, parts.namespace, parts.name) == ("secrets", "ns", "a")


def test_resource_matching_and_ranges() -> None:
    assert resource_matches(split_etcd_key("/registry/deployments/a/b"), "deployments")
    assert resource_matches(split_etcd_key("/registry/deployments/a/b"), "deployments.apps")
    assert not resource_matches(split_etcd_key("/registry/secrets/a/b"), "configmaps")
    assert range_prefix_for("secrets") == "/registry/secrets/"
    assert range_prefix_for("services", "/k8s") == "/k8s/services/specs/"
    assert range_prefix_for("widgets.example.com") is None
