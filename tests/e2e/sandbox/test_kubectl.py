"""The real kubectl binary against the stand-in (discovery, tables, create/replace/delete)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from secretkit.core.formats import classify_value
from secretkit.core.formats.model import ValueProvider
from secretkit.sandbox.servers import find_binary
from tests.fixtures.sandbox import Sandbox

pytestmark = [pytest.mark.e2e, pytest.mark.kubectl]


def kubectl(sb: Sandbox, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["KUBECONFIG"] = str(sb.kubeconfig)
    env["HOME"] = str(sb.dir)  # kubectl's discovery cache goes into the sandbox dir
    return subprocess.run([str(find_binary("kubectl")), *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_create_get_replace_delete(sandbox: Sandbox) -> None:
    done = kubectl(sandbox, "create", "secret", "generic", "kc-one", "--from-literal=a=b")
    assert done.returncode == 0, done.stderr
    kubectl(sandbox, "create", "configmap", "kc-cm", "-n", "other", "--from-literal=x=y")

    table = kubectl(sandbox, "get", "secrets", "-A")
    assert table.returncode == 0, table.stderr
    header = table.stdout.splitlines()[0].split()
    assert header == ["NAMESPACE", "NAME", "TYPE", "DATA", "AGE"]
    assert any(line.split()[:4] == ["default", "kc-one", "Opaque", "1"]
               for line in table.stdout.splitlines())
    assert "kc-cm" in kubectl(sandbox, "get", "cm", "-A").stdout

    listing = kubectl(sandbox, "get", "secrets", "-A", "-o", "json")
    rv_before = {i["metadata"]["name"]: i["metadata"]["resourceVersion"]
                 for i in json.loads(listing.stdout)["items"]}
    replaced = kubectl(sandbox, "replace", "-f", "-", stdin=listing.stdout)
    assert replaced.returncode == 0, replaced.stderr
    assert "secret/kc-one replaced" in replaced.stdout
    after = json.loads(kubectl(sandbox, "get", "secret", "kc-one", "-o", "json").stdout)
    # unchanged and not stale: the apiserver skips the write
    assert after["metadata"]["resourceVersion"] == rv_before["kc-one"]

    gone = kubectl(sandbox, "delete", "secret", "kc-one")
    assert gone.returncode == 0, gone.stderr
    missing = kubectl(sandbox, "get", "secret", "kc-one")
    assert missing.returncode != 0
    assert 'secrets "kc-one" not found' in missing.stderr


def test_apply_and_conflict_messages(sandbox: Sandbox) -> None:
    manifest = ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: kc-applied\n"
                "stringData:\n  token: first\n")
    first = kubectl(sandbox, "apply", "-f", "-", stdin=manifest)
    assert first.returncode == 0, first.stderr
    second = kubectl(sandbox, "apply", "-f", "-", stdin=manifest.replace("first", "second"))
    assert second.returncode == 0, second.stderr
    assert "configured" in second.stdout
    data = json.loads(kubectl(sandbox, "get", "secret", "kc-applied", "-o", "json").stdout)
    assert data["data"]["token"] == "c2Vjb25k"  # base64("second")
    with sandbox.etcd_client() as etcd:
        kv = etcd.get(b"/registry/secrets/default/kc-applied")
    assert kv is not None and classify_value(kv.value).provider is ValueProvider.KMS_V2

    stale = dict(data)
    stale["metadata"] = dict(data["metadata"], resourceVersion="1")
    conflict = kubectl(sandbox, "replace", "-f", "-", stdin=json.dumps(stale))
    assert conflict.returncode != 0
    assert "the object has been modified" in conflict.stderr

    duplicate = kubectl(sandbox, "create", "secret", "generic", "kc-applied",
                        "--from-literal=a=b")
    assert duplicate.returncode != 0
    assert 'secrets "kc-applied" already exists' in duplicate.stderr


def test_watch_based_commands(sandbox: Sandbox) -> None:
    """``kubectl wait --for=delete`` (WatchList informer) and ``kubectl get -w``."""
    import threading
    import time

    assert kubectl(sandbox, "create", "secret", "generic", "kc-wait",
                   "--from-literal=a=b").returncode == 0
    deleter = threading.Timer(1.0, lambda: kubectl(sandbox, "delete", "secret", "kc-wait",
                                                   "--wait=false"))
    deleter.start()
    waited = kubectl(sandbox, "wait", "--for=delete", "secret/kc-wait", "--timeout=30s")
    deleter.join()
    assert waited.returncode == 0, waited.stderr
    assert "condition met" in waited.stdout

    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(KUBECONFIG=str(sandbox.kubeconfig), HOME=str(sandbox.dir))
    with subprocess.Popen([str(find_binary("kubectl")), "get", "secrets", "-n", "kc-watch",
                           "-w", "--output-watch-events"], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        time.sleep(2.0)
        kubectl(sandbox, "create", "secret", "generic", "kc-seen", "-n", "kc-watch",
                "--from-literal=a=b")
        time.sleep(1.5)
        proc.terminate()
        out, _err = proc.communicate(timeout=10)
    assert any(line.split()[:2] == ["ADDED", "kc-seen"] for line in out.splitlines()), out
