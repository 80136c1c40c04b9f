"""Provider lookup per resource and etcd key → resource mapping."""

from __future__ import annotations

import pytest

from secretkit.core.encryption_config import (
    EncryptionConfig,
    IdentityProvider,
    KMSProvider,
    ResourceRule,
    providers_for,
    resource_for_etcd_key,
)
from secretkit.errors import UsageError


def _kms(name: str) -> KMSProvider:
    return KMSProvider(name, "unix:///s.sock", api_version="v2")


CFG = EncryptionConfig(
    rules=(
        ResourceRule(("secrets", "deployments.apps"), (_kms("exact"),)),
        ResourceRule(("*.apps",), (_kms("apps-wild"),)),
        ResourceRule(("*.",), (_kms("core-wild"),)),
        ResourceRule(("*.*",), (_kms("all"),)),
        ResourceRule(("secrets",), (_kms("second-secrets-rule"),)),
    )
)


def _names(resource: str, group: str = "") -> list[str]:
    return [getattr(p, "name", "identity") for p in providers_for(CFG, resource, group)]


def test_exact_then_group_wildcard_then_all() -> None:
    assert _names("deployments", "apps") == ["exact"]
    assert _names("statefulsets", "apps") == ["apps-wild"]
    assert _names("configmaps") == ["core-wild"]
    assert _names("certificates", "cert-manager.io") == ["all"]


def test_a_resource_in_two_rules_gets_both_provider_lists_in_order() -> None:
    assert _names("secrets") == ["exact", "second-secrets-rule"]


def test_no_rule_means_identity() -> None:
    cfg = EncryptionConfig(rules=(ResourceRule(("secrets",), (_kms("x"),)),))
    assert providers_for(cfg, "configmaps") == (IdentityProvider(),)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("/registry/secrets/default/db", ("secrets", "")),
        ("/registry/configmaps/kube-system/cfg", ("configmaps", "")),
        ("/registry/namespaces/default", ("namespaces", "")),
        ("/registry/services/specs/default/kubernetes", ("services", "")),
        ("/registry/services/endpoints/default/kubernetes", ("endpoints", "")),
        ("/registry/minions/node-1", ("nodes", "")),
        ("/registry/controllers/default/rc", ("replicationcontrollers", "")),
        ("/registry/deployments/default/web", ("deployments", "apps")),
        ("/registry/jobs/default/j", ("jobs", "batch")),
        ("/registry/ingress/default/i", ("ingresses", "networking.k8s.io")),
        ("/registry/cert-manager.io/certificates/default/c", ("certificates", "cert-manager.io")),
        (
            "/registry/apiextensions.k8s.io/customresourcedefinitions/x.example.com",
            ("customresourcedefinitions", "apiextensions.k8s.io"),
        ),
    ],
)
def test_resource_for_etcd_key(key: str, expected: tuple[str, str]) -> None:
    assert resource_for_etcd_key(key) == expected


def test_custom_prefix_and_foreign_keys() -> None:
    assert resource_for_etcd_key("/k3s/secrets/a/b", prefix="/k3s") == ("secrets", "")
    assert resource_for_etcd_key("/k3s/secrets/a/b", prefix="/k3s/") == ("secrets", "")
    with pytest.raises(UsageError, match="not under the prefix"):
        resource_for_etcd_key("/other/secrets/a/b")
    with pytest.raises(UsageError):
        resource_for_etcd_key("/registry/")
