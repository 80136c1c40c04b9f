"""etcd key ranges of resources and object names of keys."""

from __future__ import annotations

from secretkit.reencrypt.etcd_keys import etcd_prefixes, object_of_key


def test_core_resources_and_special_paths() -> None:
    assert etcd_prefixes("secrets", "") == ["/registry/secrets/"]
    assert etcd_prefixes("services", "", "/custom/") == ["/custom/services/specs/"]
    assert etcd_prefixes("nodes", "") == ["/registry/minions/"]


def test_group_resources_get_both_layouts() -> None:
    # a dotted group outside the built-in ones is a CRD first; the built-in layout is
    # kept as a second candidate for a built-in of another Kubernetes version
    assert etcd_prefixes("widgets", "example.com") == [
        "/registry/example.com/widgets/",
        "/registry/widgets/",
    ]
    # built-in groups have exactly one layout (read off a real apiserver)
    assert etcd_prefixes("roles", "rbac.authorization.k8s.io") == ["/registry/roles/"]
    assert etcd_prefixes("apiservices", "apiregistration.k8s.io") == [
        "/registry/apiregistration.k8s.io/apiservices/"
    ]


def test_object_of_key() -> None:
    assert object_of_key("/registry/secrets/ns/a", "/registry/secrets/", True) == ("ns", "a")
    assert object_of_key("/registry/secrets/ns", "/registry/secrets/", True) is None
    assert object_of_key("/registry/secretsx/ns/a", "/registry/secrets/", True) is None
    assert object_of_key("/registry/w/x", "/registry/w/", False) == (None, "x")
    assert object_of_key("/registry/w/x/y", "/registry/w/", False) is None


def test_object_of_key_of_unknown_scope_takes_either_shape() -> None:
    w = "/registry/example.com/widgets/"
    assert object_of_key(w + "a", w, None) == (None, "a")
    assert object_of_key(w + "ns/a", w, None) == ("ns", "a")
    assert object_of_key(w + "ns/a/b", w, None) is None
    assert object_of_key(w, w, None) is None
    assert object_of_key(w + "ns/", w, None) is None


def test_a_crd_named_like_a_builtin_gets_only_its_own_layout() -> None:
    # /registry/jobs/ holds batch Jobs: never objects of jobs.example.com
    assert etcd_prefixes("jobs", "example.com") == ["/registry/example.com/jobs/"]
