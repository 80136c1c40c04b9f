"""The stand-in's discovery answers against kube-apiserver v1.36.2's (captured).

Every kind the stand-in stores must be listed exactly as the real apiserver lists it
(legacy and aggregated discovery); namespaces, which the stand-in only derives from
stored objects, differ in their verbs alone, and the untyped kinds (generic.py) in
their subresources, which are not served.
"""

from __future__ import annotations

import json
from typing import Any

from secretkit.sandbox.apiserver import discovery
from secretkit.sandbox.apiserver.kinds import STORED
from secretkit.sandbox.apiserver.negotiate import wants_aggregated_discovery
from tests.unit.sandbox.captured import discovery as captured
from tests.unit.sandbox.captured import discovery_headers

KUBECTL_ACCEPT = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                  "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
                  "application/json")


def _by(items: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {str(item[key]): item for item in items}


def test_core_resource_list_entries_are_the_real_ones() -> None:
    real = captured("api-v1.json")
    ours = discovery.resource_list("", "v1")
    assert isinstance(real, dict) and ours is not None
    assert list(ours) == list(real)  # kind, groupVersion, resources (no apiVersion)
    real_entries = _by(real["resources"], "name")
    for entry in ours["resources"]:
        expected = real_entries[entry["name"]]
        if entry["name"] == "namespaces":
            assert set(entry["verbs"]) < set(expected["verbs"])
            entry = {**entry, "verbs": expected["verbs"]}
        assert entry == expected
        assert list(entry) == list(expected)  # same field order


def test_group_list_and_versions_are_the_real_ones() -> None:
    real = captured("apis.json")
    assert isinstance(real, dict)
    real_groups = _by(real["groups"], "name")
    ours = discovery.api_group_list()
    assert list(ours) == list(real)
    assert [g["name"] for g in ours["groups"]] == [
        g["name"] for g in real["groups"] if g["name"] in {r.group for r in STORED.values()}]
    for group in ours["groups"]:
        assert group == real_groups[group["name"]]


def test_aggregated_discovery_entries_are_the_real_ones() -> None:
    for path, name in (("/api", "api-aggregated.json"), ("/apis", "apis-aggregated.json")):
        real = captured(name)
        assert isinstance(real, dict)
        body, headers = discovery.aggregated(path, "v2")
        ours = json.loads(body)
        assert {k: v for k, v in ours.items() if k != "items"} == {
            k: v for k, v in real.items() if k != "items"}
        for item in ours["items"]:
            if path == "/apis":
                real_item = next(i for i in real["items"] if i["metadata"] == item["metadata"])
            else:
                real_item = real["items"][0]
                assert item["metadata"] == real_item["metadata"] == {}
            real_versions = _by(real_item["versions"], "version")
            for version in item["versions"]:
                real_version = real_versions[version["version"]]
                assert version["freshness"] == real_version["freshness"]
                real_resources = _by(real_version["resources"], "resource")
                for entry in version["resources"]:
                    expected = dict(real_resources[entry["resource"]])
                    rtype = next((r for r in STORED.values() if r.plural == entry["resource"]
                                  and r.version == version["version"]
                                  and r.group == item["metadata"].get("name", "")), None)
                    if rtype is not None and not rtype.protobuf:
                        expected.pop("subresources", None)  # untyped: none served
                    if entry["resource"] == "namespaces":
                        assert set(entry["verbs"]) < set(expected["verbs"])
                        expected.pop("subresources")  # finalize/status are not served
                        expected["verbs"] = entry["verbs"]
                    assert entry == expected
        real_headers = discovery_headers(name.replace(".json", ".headers.txt"))
        assert headers["Content-Type"] == real_headers["content-type"]
        assert headers["Vary"] == real_headers["vary"]
        assert headers["Cache-Control"] == real_headers["cache-control"]
        assert headers["Etag"].startswith('"') and len(headers["Etag"]) == len(
            real_headers["etag"])


def test_kubectl_accept_header_selects_aggregated_discovery() -> None:
    assert wants_aggregated_discovery(KUBECTL_ACCEPT) == "v2"
    assert wants_aggregated_discovery("application/json") is None
    assert wants_aggregated_discovery("") is None


def test_version_and_api_documents_have_the_real_shape() -> None:
    real = captured("version.json")
    assert isinstance(real, dict)
    ours = discovery.version_info()
    assert list(ours) == list(real)
    assert (ours["major"], ours["minor"]) == (real["major"], real["minor"])
    assert "sandbox" in ours["gitVersion"]  # it says what it is
    # and which release it follows (semver: the build after the '-')
    assert ours["gitVersion"].split("-", 1)[0] == real["gitVersion"]
    api = captured("api.json")
    assert isinstance(api, dict)
    assert discovery.api_versions(api["serverAddressByClientCIDRs"][0]["serverAddress"]) == api
