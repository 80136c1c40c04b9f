"""etcd key ranges of resources and object names of keys."""

from __future__ import annotations

from secretkit.reencrypt.etcd_keys import etcd_prefixes, object_of_key


def test_core_resources_and_special_paths() -> None:
    assert etcd_prefixes("secrets", "") == ["/registry/secrets/"]
    assert etcd_prefixes("services", "", "/custom/") == ["/custom/services/specs/"]
    assert etcd_prefixes("nodes", "") == ["/registry/minions/"]


def test_group_resources_get_both_layouts() -> None:
    assert etcd_prefixes("widgets", "example.com") == [
        "/registry/widgets/",
        "/registry/example.com/widgets/",
    ]


def test_object_of_key() -> None:
    assert object_of_key("/registry/secrets/ns/a", "/registry/secrets/", True) == ("ns", "a")
    assert object_of_key("/registry/secrets/ns", "/registry/secrets/", True) is None
    assert object_of_key("/registry/secretsx/ns/a", "/registry/secrets/", True) is None
    assert object_of_key("/registry/w/x", "/registry/w/", False) == (None, "x")
    assert object_of_key("/registry/w/x/y", "/registry/w/", False) is None
