"""Where a resource's objects live in etcd: the inverse of resource_for_etcd_key."""

from __future__ import annotations

import pytest

from secretkit.core.encryption_config import etcd_prefixes_for, resource_for_etcd_key


@pytest.mark.parametrize(
    ("resource", "group", "key"),
    [
        ("secrets", "", "/registry/secrets/default/a"),
        ("services", "", "/registry/services/specs/default/a"),
        ("endpoints", "", "/registry/services/endpoints/default/a"),
        ("nodes", "", "/registry/minions/n1"),
        ("deployments", "apps", "/registry/deployments/default/a"),
        ("roles", "rbac.authorization.k8s.io", "/registry/roles/default/a"),
        ("ingresses", "networking.k8s.io", "/registry/ingress/default/a"),
        ("widgets", "example.com", "/registry/example.com/widgets/default/a"),
    ],
)
def test_every_key_is_under_one_of_its_resources_prefixes(
    resource: str, group: str, key: str
) -> None:
    assert resource_for_etcd_key(key) == (resource, group)
    assert any(key.startswith(p) for p in etcd_prefixes_for(resource, group))


def test_custom_prefix_and_wildcards() -> None:
    assert etcd_prefixes_for("secrets", "", "/custom/") == ["/custom/secrets/"]
    assert etcd_prefixes_for("*", "*") == ["/registry/"]
