"""The stand-in behaves like the captured kube-apiserver v1.36.2 where the toolkit cares.

* its own keys: plaintext master/peer leases (15 s etcd leases, rewritten every 10 s)
  whatever the config, an identity Lease encrypted like any Lease;
* Leases and ControllerRevisions served like kube-apiserver serves them, the latter's
  ``data`` compared byte for byte on update (the 422 secretkit reencrypt once hit);
* no-op updates (PUT or an empty PATCH) are not written unless the value is stale;
* metadata-only lists and protobuf answers; aggregated discovery for kubectl;
* the kms health check fails in readyz/healthz, never livez, once its cached answer
  expires after the plugin stopped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from secretkit._proto.k8s import meta_v1_pb2
from secretkit.core.formats import classify_value, decode_unknown
from secretkit.core.formats.model import ValueProvider
from secretkit.core.formats.protowire import iter_fields
from secretkit.sandbox.servers import ManagedProcess, find_binary
from tests.fixtures.sandbox import Sandbox, SandboxFactory

pytestmark = pytest.mark.e2e

STAR_STAR_AESGCM = b"""apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: ["*.*"]
    providers:
      - aesgcm:
          keys:
            - name: k1
              secret: MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=
      - identity: {}
"""
NEXT_KEY = STAR_STAR_AESGCM.replace(b"- name: k1\n", b"""- name: k2
              secret: YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXphYmNkZWY=
            - name: k1
""")


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f}s"
        time.sleep(0.25)


def kubectl(sb: Sandbox, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["KUBECONFIG"] = str(sb.kubeconfig)
    env["HOME"] = str(sb.dir)
    return subprocess.run([str(find_binary("kubectl")), *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def _raw(sb: Sandbox, key: str) -> bytes | None:
    with sb.etcd_client() as etcd:
        kv = etcd.get(key.encode())
    return None if kv is None else kv.value


@pytest.fixture(scope="module")
def star(sandbox_factory: SandboxFactory) -> Sandbox:
    """A sandbox whose config encrypts every resource (``*.*``) with aesgcm."""
    return sandbox_factory("none", config=STAR_STAR_AESGCM)


def test_internal_keys_are_plaintext_whatever_the_config(star: Sandbox) -> None:
    with star.etcd_client() as etcd:
        masters = [kv for page in etcd.range_pages(b"/registry/masterleases/") for kv in page]
        peers = [kv for page in etcd.range_pages(b"/registry/peerserverleases/") for kv in page]
        identity = [kv for page in etcd.range_pages(b"/registry/leases/kube-system/")
                    for kv in page]
    assert [kv.key for kv in masters] == [b"/registry/masterleases/127.0.0.1"]
    assert len(peers) == 1 and len(identity) == 1
    apiserver_id = peers[0].key.decode().rsplit("/", 1)[1]
    assert apiserver_id.startswith("apiserver-") and len(apiserver_id) == len("apiserver-") + 26
    for kv in (*masters, *peers):
        unknown = decode_unknown(kv.value)  # plaintext k8s\x00 protobuf, not encrypted
        assert (unknown.api_version, unknown.kind) == ("v1", "Endpoints")
    assert identity[0].key.decode().endswith(f"/{apiserver_id}")
    assert classify_value(identity[0].value).provider is ValueProvider.AESGCM
    # the audit counts them apart: a correctly configured *.* cluster is clean
    done = subprocess.run(
        [sys.executable, "-m", "secretkit.cli.main", "audit", "--endpoints", star.etcd_endpoint,
         "--config", str(star.config_path), "--decrypt-check", "-o", "json"],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["totals"]["internal_keys"] == 2


def test_internal_keys_are_rewritten_every_10s_and_expire_with_their_lease(
        star: Sandbox) -> None:
    def generation(key: str) -> int:
        raw = _raw(star, key)
        assert raw is not None
        from secretkit.sandbox.apiserver.kinds import ENDPOINTS
        from secretkit.sandbox.apiserver.schema import decode_message

        return int(decode_message(ENDPOINTS, decode_unknown(raw).raw)["metadata"]["generation"])

    master = "/registry/masterleases/127.0.0.1"
    first = generation(master)
    start = time.monotonic()
    _wait_for(lambda: generation(master) > first, 15, "masterlease refresh")
    assert 5 < time.monotonic() - start <= 12  # the 10 s schedule, not faster
    with star.etcd_client() as etcd:
        (old_peer,) = [kv.key.decode() for page in etcd.range_pages(
            b"/registry/peerserverleases/") for kv in page]
    star.restart_apiserver()  # a new apiserver identity; the old one stops refreshing
    gone_after = time.monotonic()
    _wait_for(lambda: _raw(star, old_peer) is None, 25, "old peer lease expiry")
    assert time.monotonic() - gone_after <= 20  # 15 s etcd lease, not kept forever
    assert _raw(star, master) is not None  # the same IP keeps its master lease


def test_leases_are_served_like_kube_apiserver_serves_them(star: Sandbox) -> None:
    base = "/apis/coordination.k8s.io/v1/namespaces/locks/leases"
    code, created = star.request("POST", base, {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "rotation"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 30}})
    assert code == 201, created
    rv = created["metadata"]["resourceVersion"]
    raw = _raw(star, "/registry/leases/locks/rotation")
    assert raw is not None and classify_value(raw).provider is ValueProvider.AESGCM
    taken = dict(created, spec={"holderIdentity": "b", "leaseDurationSeconds": 30,
                                "renewTime": "2026-01-01T00:00:00.000000Z"})
    code, updated = star.request("PUT", f"{base}/rotation", taken)
    assert code == 200 and updated["spec"]["holderIdentity"] == "b"
    # a second writer with the old resourceVersion loses: that is what makes it a lock
    code, status = star.request("PUT", f"{base}/rotation", dict(taken, metadata=dict(
        taken["metadata"], resourceVersion=rv)))
    assert code == 409 and status["reason"] == "Conflict"
    assert status["details"] == {"name": "rotation", "group": "coordination.k8s.io",
                                 "kind": "leases"}
    table = kubectl(star, "get", "leases", "-n", "locks")
    assert table.returncode == 0, table.stderr
    assert table.stdout.split()[:6] == ["NAME", "HOLDER", "AGE", "rotation", "b",
                                        table.stdout.split()[5]]
    code, _ = star.request("DELETE", f"{base}/rotation", {
        "preconditions": {"resourceVersion": updated["metadata"]["resourceVersion"]}})
    assert code == 200 and _raw(star, "/registry/leases/locks/rotation") is None


def test_controller_revision_data_is_compared_byte_for_byte(star: Sandbox) -> None:
    manifest = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                "metadata": {"name": "ds-1", "namespace": "apps"},
                "data": {"spec": {"template": {"metadata": {"labels": {"app": "ds"}}}}},
                "revision": 1}
    done = kubectl(star, "create", "-f", "-", stdin=json.dumps(manifest))
    assert done.returncode == 0, done.stderr
    path = "/apis/apps/v1/namespaces/apps/controllerrevisions/ds-1"
    code, current = star.request("GET", path)
    assert code == 200 and current["data"] == manifest["data"]
    # Python's default json.dumps puts spaces in "data": a different RawExtension
    spaced = json.dumps(current).encode()
    code, status = star.request("PUT", path, spaced)
    assert code == 422, status
    assert status["reason"] == "Invalid" and "data: field is immutable" in status["message"]
    # compact JSON, as kubectl sends it, is an unchanged replace
    compact = json.dumps(current, separators=(",", ":")).encode()
    code, same = star.request("PUT", path, compact)
    assert code == 200 and same["metadata"]["resourceVersion"] == current["metadata"][
        "resourceVersion"]
    listing = kubectl(star, "get", "controllerrevisions", "-A", "-o", "json")
    replaced = kubectl(star, "replace", "-f", "-", stdin=listing.stdout)
    assert replaced.returncode == 0, replaced.stderr


def test_noop_updates_are_written_only_when_the_value_is_stale(
        sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory("none", config=STAR_STAR_AESGCM)
    path = "/api/v1/namespaces/default/secrets/noop"
    code, created = sb.request("POST", "/api/v1/namespaces/default/secrets", {
        "metadata": {"name": "noop"}, "stringData": {"k": "v"}})
    assert code == 201
    rv = created["metadata"]["resourceVersion"]
    meta = {"Accept": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"}
    merge = {"Content-Type": "application/merge-patch+json", **meta}
    before = _raw(sb, "/registry/secrets/default/noop")
    for body, headers in ((b"{}", merge),
                          (b"[]", {"Content-Type": "application/json-patch+json"}),
                          (json.dumps(created).encode(), {})):
        method = "PUT" if headers == {} else "PATCH"
        code, answer = sb.request(method, path, body, headers=headers)
        assert code == 200, answer
        assert answer["metadata"]["resourceVersion"] == rv
    assert answer["kind"] == "Secret"
    assert _raw(sb, "/registry/secrets/default/noop") == before  # nothing written
    code, partial = sb.request("PATCH", path, b"{}", headers=merge)
    assert partial["kind"] == "PartialObjectMetadata" and "data" not in partial
    sb.restart_apiserver(sb.write_config(NEXT_KEY))  # k2 writes: the value is now stale
    code, answer = sb.request("PATCH", path, b"{}", headers=merge)
    assert code == 200 and int(answer["metadata"]["resourceVersion"]) > int(rv)
    after = _raw(sb, "/registry/secrets/default/noop")
    assert after is not None and after.startswith(b"k8s:enc:aesgcm:v1:k2:")
    code, again = sb.request("PATCH", path, b"{}", headers=merge)
    assert again["metadata"]["resourceVersion"] == answer["metadata"]["resourceVersion"]
    code, obj = sb.request("GET", path)
    assert obj["data"] == {"k": "dg=="}  # the rewrite kept the object as it was


def _parse_partial_list(body: bytes) -> tuple[str, list[Any]]:
    unknown = decode_unknown(body)
    assert (unknown.api_version, unknown.kind) == ("meta.k8s.io/v1",
                                                   "PartialObjectMetadataList")
    rv, items = "", []
    for number, _wire, value in iter_fields(unknown.raw):
        assert isinstance(value, memoryview)
        if number == 1:
            list_meta = meta_v1_pb2.ListMeta()
            list_meta.ParseFromString(bytes(value))
            rv = list_meta.resourceVersion
        elif number == 2:
            for inner, _w, meta in iter_fields(value):
                assert inner == 1 and isinstance(meta, memoryview)
                parsed = meta_v1_pb2.ObjectMeta()
                parsed.ParseFromString(bytes(meta))
                items.append(parsed)
    return rv, items


def test_metadata_only_lists_in_json_and_protobuf(star: Sandbox) -> None:
    for i in range(3):
        star.request("POST", "/api/v1/namespaces/meta/configmaps", {
            "metadata": {"name": f"m{i}"}, "data": {"big": "x" * 1000}})
    accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
    code, doc = star.request("GET", "/api/v1/namespaces/meta/configmaps?limit=2",
                             headers={"Accept": accept})
    assert code == 200 and doc["kind"] == "PartialObjectMetadataList"
    assert [i["metadata"]["name"] for i in doc["items"]] == ["m0", "m1"]
    assert "data" not in doc["items"][0] and doc["metadata"]["continue"]
    # protobuf first, as client-go's metadata client asks; parsed by the generated classes
    import ssl
    import urllib.request

    req = urllib.request.Request(  # noqa: S310 - https://127.0.0.1 only
        star.api_url + "/api/v1/namespaces/meta/configmaps",
        headers={"Authorization": f"Bearer {star.token}",
                 "Accept": accept.replace("application/json",
                                          "application/vnd.kubernetes.protobuf") + "," + accept})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=ssl.create_default_context(
                                             cafile=str(star.ca_file))))
    with opener.open(req, timeout=30) as resp:
        assert resp.headers["Content-Type"].startswith("application/vnd.kubernetes.protobuf")
        rv, items = _parse_partial_list(resp.read())
    assert int(rv) > 0 and [m.name for m in items] == ["m0", "m1", "m2"]
    assert all(m.namespace == "meta" and m.uid and int(m.resourceVersion) > 0 for m in items)
    code, status = star.request("GET", "/api/v1/namespaces/meta/configmaps/m0",
                                headers={"Accept": accept})
    assert code == 406 and status["reason"] == "NotAcceptable"


def test_kubectl_discovers_every_served_kind(star: Sandbox) -> None:
    done = kubectl(star, "api-resources", "--no-headers")
    assert done.returncode == 0, done.stderr
    names = {line.split()[0] for line in done.stdout.splitlines()}
    assert {"secrets", "configmaps", "namespaces", "leases", "controllerrevisions"} <= names
    code, doc = star.request("GET", "/apis", headers={
        "Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"})
    assert code == 200 and doc["kind"] == "APIGroupDiscoveryList"


def test_a_stopped_plugin_fails_readyz_and_healthz_never_livez(
        sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory("kms", reload_interval=30.0)
    code, body = sb.request("GET", "/readyz?verbose")
    assert code == 200 and "[+]kms-providers ok\n" in body  # a fresh probe: cached 20 s
    ManagedProcess(**_plugin_process(sb)).stop()
    stopped = time.monotonic()
    _wait_for(lambda: sb.request("GET", "/readyz")[0] == 500, 30, "readyz failing")
    # the last good answer was reused until its 20 s were up (the capture: 11.3 s)
    assert time.monotonic() - stopped <= 27
    code, body = sb.request("GET", "/readyz?verbose")
    assert code == 500 and "[-]kms-providers failed: reason withheld\n" in body
    assert body.endswith("readyz check failed\n")
    code, body = sb.request("GET", "/healthz?verbose")
    assert code == 500 and "[-]kms-providers failed: reason withheld\n" in body
    code, body = sb.request("GET", "/livez?verbose")
    assert code == 200 and "kms" not in body
    code, body = sb.request("GET", "/readyz/kms-providers")
    assert code == 500 and body.startswith("internal server error: kms-provider-0: ")


def _plugin_process(sb: Sandbox) -> dict[str, Any]:
    info = sb.state.processes["kms-plugin"]
    return {"name": info.name, "pid": info.pid, "argv": info.argv, "log_path": None}
