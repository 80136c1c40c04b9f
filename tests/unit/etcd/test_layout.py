"""The key layout table against the keyspace of a real kube-apiserver v1.36.2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from secretkit.core.layout import BUILTIN_RESOURCES, INTERNAL_KEYS, Layout, ResourceLayout

CAPTURE = Path(__file__).parents[2] / "data" / "real-apiserver" / "etcd-layout.json"


@pytest.fixture(scope="module")
def capture() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(CAPTURE.read_text())
    return data


def _stored(capture: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in capture["resources"] if r["stored"]]


def test_every_stored_resource_has_the_captured_prefix(capture: dict[str, Any]) -> None:
    layout = Layout(capture["etcd_prefix"])
    for res in _stored(capture):
        found = layout.prefixes(res["group"], res["resource"])
        # custom resources: the CRD layout first (a second candidate is kept, see Layout)
        assert found[0] == res["etcd_prefix"], res
        if res["group"] != "capture.example.com":
            assert found == [res["etcd_prefix"]], res


def test_the_table_holds_every_captured_builtin_and_nothing_else(
    capture: dict[str, Any],
) -> None:
    captured = {
        (r["group"], r["resource"], r["namespaced"], r["etcd_prefix"])
        for r in _stored(capture)
        # the capture's two CRDs are custom resources, not built-ins
        if r["group"] != "capture.example.com"
    }
    table = {(r.group, r.resource, r.namespaced, f"/registry/{r.path}/") for r in BUILTIN_RESOURCES}
    assert table == captured


def test_every_captured_key_gets_its_owner(capture: dict[str, Any]) -> None:
    layout = Layout()
    for entry in capture["all_keys"]:
        owner = layout.owner(entry["key"])
        if entry["resource"] is None:
            assert owner.kind == "internal", entry["key"]
            assert owner.resources == ()
            continue
        group, resource = entry["resource"]
        assert (group, resource) == owner.resources[0], entry["key"]


def test_internal_keys_are_exactly_the_captured_non_resource_keys(
    capture: dict[str, Any],
) -> None:
    layout = Layout()
    for entry in capture["non_resource_keys"]:
        assert layout.owner(entry["key"]).kind == "internal"
    assert {k.path for k in INTERNAL_KEYS} == {"masterleases/", "peerserverleases/", "ranges/"}
    # not internal: a resource whose name merely starts like one
    assert layout.owner("/registry/rangesx/a").kind == "unknown"


def test_both_event_apis_own_the_events_prefix() -> None:
    owner = Layout().owner(b"/registry/events/ns/e1")
    assert owner.resources == (("", "events"), ("events.k8s.io", "events"))


def test_object_names_follow_the_captured_key_format(capture: dict[str, Any]) -> None:
    layout = Layout()
    namespaced = {(r["group"], r["resource"]): r["namespaced"] for r in _stored(capture)}
    for entry in capture["all_keys"]:
        if entry["resource"] is None:
            continue
        owner = layout.owner(entry["key"])
        namespace, name = layout.object_name(entry["key"], owner)
        tail = entry["key"][len(layout.root) + len(owner.path) + 1 :]
        if namespaced[tuple(entry["resource"])]:
            assert f"{namespace}/{name}" == tail
        else:
            assert (namespace, name) == (None, tail)


@pytest.mark.parametrize("prefix", ["/k3s", "/k3s/", "k3s"])
def test_custom_prefix(prefix: str) -> None:
    layout = Layout(prefix)
    assert layout.prefixes("", "nodes") == ["/k3s/minions/"]
    assert layout.owner("/k3s/services/specs/ns/s").resources == (("", "services"),)
    assert layout.owner("/registry/secrets/ns/s").kind == "outside"


def test_crds_and_unknown_keys() -> None:
    layout = Layout()
    owner = layout.owner("/registry/cert-manager.io/certificates/ns/c")
    assert (owner.kind, owner.resources) == ("unknown", (("cert-manager.io", "certificates"),))
    assert layout.prefixes("cert-manager.io", "certificates")[0] == (
        "/registry/cert-manager.io/certificates/"
    )
    # discovery can teach the layout a resource the table does not know
    taught = Layout(extra=[ResourceLayout("cert-manager.io", "certificates", True,
                                          "cert-manager.io/certificates")])
    assert taught.owner("/registry/cert-manager.io/certificates/ns/c").kind == "resource"
    assert layout.prefixes("*", "*") == ["/registry/"]


@pytest.mark.parametrize(
    ("group", "resource", "own"),
    [
        ("example.com", "jobs", "/registry/example.com/jobs/"),  # batch Jobs: jobs/
        ("batch.volcano.sh", "jobs", "/registry/batch.volcano.sh/jobs/"),
        ("example.com", "services", "/registry/example.com/services/"),  # specs, endpoints
        ("example.com", "minions", "/registry/example.com/minions/"),  # nodes' path
        ("example.com", "ranges", "/registry/example.com/ranges/"),  # apiserver-internal
        ("example.com", "masterleases", "/registry/example.com/masterleases/"),
    ],
)
def test_an_unknown_group_never_guesses_a_path_another_resource_owns(
    group: str, resource: str, own: str
) -> None:
    # <resource>/ holds a known resource's (or the apiserver's) values: judged with
    # this resource's chain they would be misread, so only its own layout is given
    assert Layout().prefixes(group, resource) == [own]
    assert Layout("/k3s").prefixes(group, resource) == [own.replace("/registry/", "/k3s/")]


def test_an_unknown_group_keeps_the_builtin_guess_where_the_path_is_free() -> None:
    # a built-in of another Kubernetes version would live at <resource>/: still read
    assert Layout().prefixes("storagemigration.k8s.io", "storageversionmigrations") == [
        "/registry/storagemigration.k8s.io/storageversionmigrations/",
        "/registry/storageversionmigrations/",
    ]
    assert Layout().prefixes("example.com", "rangesx") == [
        "/registry/example.com/rangesx/",
        "/registry/rangesx/",
    ]
