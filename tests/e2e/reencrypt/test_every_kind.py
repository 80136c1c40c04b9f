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

import pytest

from secretkit.core.formats import classify_value, match_key_name
from secretkit.core.formats.model import ValueProvider
from secretkit.core.formats.prefixes import AESGCM_PREFIX
from secretkit.sandbox.servers import find_binary
from tests.e2e.reencrypt.helpers import key_b64, run_cli
from tests.fixtures.sandbox import SandboxFactory

pytestmark = [pytest.mark.e2e, pytest.mark.kubectl]


def _config(*keys: str) -> bytes:
    entries = ", ".join(f'{{name: {k}, secret: "{key_b64(k[-1])}"}}' for k in keys)
    return (
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
        "resources:\n  - resources: [leases.coordination.k8s.io, controllerrevisions.apps]\n"
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
