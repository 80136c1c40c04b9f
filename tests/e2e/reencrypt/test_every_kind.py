"""``secretkit reencrypt`` rewrites every kind, including the one ``kubectl replace``
cannot: a ControllerRevision whose ``data`` was stored with whitespace.

kube-apiserver compares a ControllerRevision's ``data`` byte for byte on update and
re-encodes it compactly in any JSON round trip, so for such an object both
``kubectl get -o json | kubectl replace -f -`` and an empty merge patch answer 422.
reencrypt then sends back the exact protobuf bytes it read, which are equal.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from secretkit.core.formats import classify_value, match_key_name
from secretkit.core.formats.model import ValueProvider
from secretkit.core.formats.prefixes import AESGCM_PREFIX
from secretkit.core.layout import Layout
from secretkit.sandbox.apiserver.kinds import STORED
from secretkit.sandbox.servers import find_binary
from tests.e2e.reencrypt.helpers import key_b64, run_cli
from tests.fixtures.sandbox import SandboxFactory

pytestmark = [pytest.mark.e2e, pytest.mark.kubectl]


def _config(*keys: str, resources: str = "leases.coordination.k8s.io, controllerrevisions.apps"
            ) -> bytes:
    entries = ", ".join(f'{{name: {k}, secret: "{key_b64(k[-1])}"}}' for k in keys)
    return (
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
        f"resources:\n  - resources: [{resources}]\n"
        f"    providers:\n      - aesgcm: {{keys: [{entries}]}}\n      - identity: {{}}\n"
    ).encode()


def test_leases_and_controller_revisions_are_rewritten(sandbox_factory: SandboxFactory
                                                      ) -> None:
    sb = sandbox_factory("none", config=_config("key1"))
    revisions = "/apis/apps/v1/namespaces/apps/controllerrevisions"
    spaced = json.dumps({"apiVersion": "apps/v1", "kind": "ControllerRevision",
                         "metadata": {"name": "spaced"}, "revision": 2,
                         "data": {"spec": {"template": {"metadata": {}}}}}).encode()
    assert b'"data": {"spec"' in spaced  # stored as sent, whitespace included
    assert sb.request("POST", revisions, spaced)[0] == 201
    assert sb.request("POST", revisions, {"metadata": {"name": "compact"}, "revision": 1,
                                          "data": {"a": 1}})[0] == 201
    for name in ("l1", "l2"):
        code, _ = sb.request("POST", "/apis/coordination.k8s.io/v1/namespaces/locks/leases",
                             {"metadata": {"name": name}, "spec": {"holderIdentity": name}})
        assert code == 201
    sb.restart_apiserver(sb.write_config(_config("key2", "key1")))

    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(KUBECONFIG=str(sb.kubeconfig), HOME=str(sb.dir))
    kubectl = str(find_binary("kubectl"))
    listing = subprocess.run([kubectl, "get", "controllerrevision", "spaced", "-n", "apps",
                              "-o", "json"], env=env, capture_output=True, text=True,
                             timeout=60, check=True)
    replaced = subprocess.run([kubectl, "replace", "-f", "-"], input=listing.stdout, env=env,
                              capture_output=True, text=True, timeout=60, check=False)
    assert replaced.returncode != 0 and "field is immutable" in replaced.stderr

    res = run_cli(sb, "--resources", "leases.coordination.k8s.io,controllerrevisions.apps",
                  "-o", "json")
    assert res.rc == 0, res.stderr
    totals = res.summary()["totals"]
    # the stand-in's identity Leases (kube-system) are Leases too: the one of the
    # apiserver before the restart is stale, the current one already uses key2 (it is
    # renewed every 10 s: a renewal during the run would count it as rewritten)
    assert totals["failed"] == 0 and totals["seen"] == 6
    assert totals["rewritten"] + totals["unchanged"] == 6 and totals["rewritten"] >= 5
    with sb.etcd_client() as etcd:
        values = {kv.key.decode(): kv.value
                  for prefix in (b"/registry/leases/", b"/registry/controllerrevisions/")
                  for page in etcd.range_pages(prefix) for kv in page}
    assert len(values) >= 5
    for key, value in values.items():
        assert classify_value(value).provider is ValueProvider.AESGCM, key
        assert match_key_name(value[len(AESGCM_PREFIX):], ["key2", "key1"]) == "key2", key
    code, obj = sb.request("GET", f"{revisions}/spaced")
    assert code == 200 and obj["data"] == {"spec": {"template": {"metadata": {}}}}


def _star_star(*keys: str) -> bytes:
    return _config(*keys, resources="'*.*'")


def _captured_stored_resources() -> dict[tuple[str, str], str]:
    """(group, resource) -> etcd prefix of every resource the real apiserver stored,
    but namespaces (the stand-in derives them) and the capture's own CRDs."""
    layout = json.loads((Path(__file__).parents[2] / "data" / "real-apiserver"
                         / "etcd-layout.json").read_text())
    return {(r["group"], r["resource"]): r["etcd_prefix"] for r in layout["resources"]
            if r["stored"] and r["preferred_version"] and r["resource"] != "namespaces"
            and r["group"] != "capture.example.com"}


def test_from_config_rewrites_every_stored_type_of_the_captured_layout(
        sandbox_factory: SandboxFactory) -> None:
    """One object of every stored resource kube-apiserver v1.36.2 has, created through
    the API under ``*.*`` with key1; after the switch to key2, ``reencrypt
    --from-config`` (discovery, every served resource) leaves no value of any of them
    on key1, and every captured prefix held at least one of them."""
    sb = sandbox_factory("none", config=_star_star("key1"))
    wanted = _captured_stored_resources()
    served = {(r.group, r.plural): r for r in STORED.values()}
    assert set(wanted) == set(served), "the stand-in serves every captured stored resource"
    for (group, plural), rtype in served.items():
        base = f"/api/{rtype.version}" if not group else f"/apis/{group}/{rtype.version}"
        path = (f"{base}/namespaces/every/{plural}" if rtype.namespaced
                else f"{base}/{plural}")
        name = f"every-{plural}-{group.split('.')[0] or 'core'}"
        body: dict[str, object] = {"metadata": {"name": name}}
        if rtype.protobuf:
            body["apiVersion"], body["kind"] = rtype.api_version, rtype.kind
            if plural == "controllerrevisions":
                body["revision"] = 1
        else:
            body["spec"] = {"note": f"a {rtype.kind} with some spec"}
        code, answer = sb.request("POST", path, body)
        assert code == 201, (path, answer)
    config = sb.write_config(_star_star("key2", "key1"))
    sb.restart_apiserver(config)

    res = run_cli(sb, "--from-config", str(config), "-o", "json")
    assert res.rc == 0, res.stderr
    summary = res.summary()
    assert summary["totals"]["failed"] == 0
    layout = Layout()
    held: dict[str, int] = {}
    with sb.etcd_client() as etcd:
        for page in etcd.range_pages(b"/registry/"):
            for kv in page:
                key = kv.key.decode()
                if layout.owner(key).kind == "internal":
                    continue  # plaintext whatever the config (the real apiserver's too)
                assert classify_value(kv.value).provider is ValueProvider.AESGCM, key
                assert match_key_name(kv.value[len(AESGCM_PREFIX):], ["key2", "key1"]) == (
                    "key2"), key
                for prefix in wanted.values():
                    if key.startswith(prefix):
                        held[prefix] = held.get(prefix, 0) + 1
    assert set(held) == set(wanted.values())
    # the JSON-stored kinds read back as they were written
    code, obj = sb.request(
        "GET", "/apis/apps/v1/namespaces/every/deployments/every-deployments-apps")
    assert code == 200 and obj["spec"] == {"note": "a Deployment with some spec"}
