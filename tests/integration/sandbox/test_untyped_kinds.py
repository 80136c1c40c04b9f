"""The untyped kinds (every stored resource the stand-in has no schema for) against a
real etcd: what they accept, what they refuse, and that an unchanged update is a no-op.

Found by review: a strategic merge patch (kubectl set image / apply on a Deployment)
replaced whole lists, a malformed ownerReference broke every metadata list after it,
real names (``system:basic-user``, ``v1.``) were refused, and an identical PUT wrote.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from secretkit.sandbox.apiserver.server import ApiServer
from tests.fixtures.servers import EtcdServer
from tests.integration.sandbox.inprocess import inprocess_apiserver

pytestmark = pytest.mark.etcd

TOKEN = "t0ken-for-untyped-kinds"
DEPLOYMENTS = "/apis/apps/v1/namespaces/u/deployments"


@pytest.fixture(scope="module")
def api(etcd_server: EtcdServer, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[ApiServer]:
    with inprocess_apiserver(etcd_server, tmp_path_factory.mktemp("untyped"), token=TOKEN,
                             mode="aesgcm", etcd_prefix="/untyped/registry") as server:
        yield server


def call(api: ApiServer, method: str, path: str, body: Any = None,
         content_type: str = "application/json", accept: str = "application/json"
         ) -> tuple[int, Any]:
    host, port = api.url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers={
            "Authorization": f"Bearer {TOKEN}", "Content-Type": content_type,
            "Accept": accept})
        resp = conn.getresponse()
        raw = resp.read()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw
    finally:
        conn.close()


def test_a_strategic_merge_patch_is_refused_a_merge_patch_applies(api: ApiServer) -> None:
    containers = [{"name": "app", "image": "a:1", "ports": [{"containerPort": 80}]},
                  {"name": "side", "image": "s:1"}]
    code, _ = call(api, "POST", DEPLOYMENTS, {"metadata": {"name": "d"}, "spec": {
        "template": {"spec": {"containers": containers}}}})
    assert code == 201
    smp = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "a:2"}]}}}}
    code, status = call(api, "PATCH", f"{DEPLOYMENTS}/d", smp,
                        "application/strategic-merge-patch+json")
    assert code == 415, status
    assert "application/merge-patch+json" in status["message"]
    code, obj = call(api, "GET", f"{DEPLOYMENTS}/d")
    assert obj["spec"]["template"]["spec"]["containers"] == containers  # untouched
    code, obj = call(api, "PATCH", f"{DEPLOYMENTS}/d", {"metadata": {"labels": {"x": "y"}}},
                     "application/merge-patch+json")
    assert code == 200 and obj["metadata"]["labels"] == {"x": "y"}
    assert obj["spec"]["template"]["spec"]["containers"] == containers


def test_owner_references_are_validated_and_metadata_lists_keep_working(api: ApiServer
                                                                        ) -> None:
    pods = "/api/v1/namespaces/u/pods"
    code, status = call(api, "POST", pods, {"metadata": {"name": "bad",
                                                         "ownerReferences": ["x"]}})
    assert code == 422, status
    code, status = call(api, "POST", pods, {"metadata": {"name": "half", "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs"}]}})
    assert code == 422 and "uid" in json.dumps(status)
    ref = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u-1",
           "controller": True}
    code, _ = call(api, "POST", pods, {"metadata": {"name": "good", "ownerReferences": [ref]}})
    assert code == 201
    code, _ = call(api, "GET", pods + "?limit=10", accept="application/vnd.kubernetes.protobuf;"
                   "as=PartialObjectMetadataList;g=meta.k8s.io;v=v1")
    assert code == 200


@pytest.mark.parametrize(("path", "name"), [
    ("/apis/rbac.authorization.k8s.io/v1/clusterroles", "system:basic-user"),
    ("/apis/apiregistration.k8s.io/v1/apiservices", "v1."),
])
def test_real_names_of_untyped_kinds_are_accepted(api: ApiServer, path: str, name: str) -> None:
    code, obj = call(api, "POST", path, {"metadata": {"name": name}})
    assert code == 201, obj
    code, obj = call(api, "GET", f"{path}/{name}")
    assert code == 200 and obj["metadata"]["name"] == name


def test_a_name_that_is_no_path_segment_is_refused(api: ApiServer) -> None:
    code, _ = call(api, "POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles",
                   {"metadata": {"name": "a/b"}})
    assert code == 422


def test_an_unchanged_replace_is_a_no_op(api: ApiServer) -> None:
    services = "/api/v1/namespaces/u/services"
    code, _ = call(api, "POST", services, {"metadata": {"name": "s", "labels": {
        "b": "é<&", "a": "1"}}, "spec": {"ports": [{"port": 80.0}]}})
    assert code == 201
    code, got = call(api, "GET", f"{services}/s")
    code, replaced = call(api, "PUT", f"{services}/s", got)
    assert code == 200
    assert replaced["metadata"]["resourceVersion"] == got["metadata"]["resourceVersion"]
    assert got["spec"]["ports"] == [{"port": 80}]  # stored as Go writes a float64 1.0e2
